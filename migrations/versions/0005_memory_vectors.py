"""memories: an embedding per memory, when the database has pgvector

Revision ID: 0005
Revises: 0004

`embedding_model` names the model that made a row's embedding (NULL: none
yet); a change of model re-embeds in the background. The `embedding` column
exists only where the `vector` extension can be created (the embedded
PostgreSQL ships it; many system packages do not): without it, recall is by
full text alone (memory/vectors.py says which mode is on). The column has no
fixed dimension, so any model fits; recall compares rows of the current model
only, one user's rows at a time (the index leads with user_id), so it stays
fast for one user among millions of rows without an approximate index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("memories", sa.Column("embedding_model", sa.String(200), nullable=True))
    bind = op.get_bind()
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    ).scalar()
    if not available:
        return
    savepoint = bind.begin_nested()
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:  # installed but not ours to create: full text only
        savepoint.rollback()
        return
    savepoint.commit()
    op.execute("ALTER TABLE memories ADD COLUMN embedding vector")
    op.execute(
        "CREATE INDEX ix_memories_user_embedding_model ON memories (user_id, embedding_model) "
        "WHERE embedding IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_memories_user_embedding_model")
    op.execute("ALTER TABLE memories DROP COLUMN IF EXISTS embedding")
    op.drop_column("memories", "embedding_model")
