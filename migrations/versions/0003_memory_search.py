"""memories: a stored search vector and per-user text indexes for planning's load

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(key, '') || ' ' || content)"
RELEVANT = sa.text("kind IN ('entity', 'fact')")


def upgrade() -> None:
    # user_id inside the GIN indexes: a search reads one user's postings, not
    # everyone's (bench/memory_load: 165 ms -> 8 ms p50 at 10,000 memories).
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    # Stored, so ranking reads the vector instead of re-parsing every match.
    op.add_column(
        "memories",
        sa.Column(
            "search", postgresql.TSVECTOR(), sa.Computed(DOCUMENT, persisted=True), nullable=True
        ),
    )
    op.create_index(
        "ix_memories_user_search",
        "memories",
        ["user_id", "search"],
        postgresql_using="gin",
        postgresql_where=RELEVANT,
    )
    op.create_index(
        "ix_memories_user_content_trgm",
        "memories",
        ["user_id", "content"],
        postgresql_using="gin",
        postgresql_ops={"content": "gin_trgm_ops"},
        postgresql_where=RELEVANT,
    )
    op.drop_index("ix_memories_content_fts", table_name="memories")
    op.drop_index("ix_memories_content_trgm", table_name="memories")


def downgrade() -> None:
    op.create_index(
        "ix_memories_content_trgm",
        "memories",
        ["content"],
        postgresql_using="gin",
        postgresql_ops={"content": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_memories_content_fts",
        "memories",
        [sa.literal_column(f"({DOCUMENT})")],
        postgresql_using="gin",
    )
    op.drop_index("ix_memories_user_content_trgm", table_name="memories")
    op.drop_index("ix_memories_user_search", table_name="memories")
    op.drop_column("memories", "search")
