"""memories.embedding as halfvec, in an index that answers the nearest search

The nearest search (memory/vectors.py) reads every embedding of one user: at
10,000 memories, 8,500 rows. Read from the table, each costs a heap lookup and
a walk over the row's content to its last column, the embedding. Now:
- `embedding` is `halfvec` (pgvector 0.7 and later): two bytes a dimension
  instead of four, the same nearest memories in the same order as exact
  floats (tests/memory/test_vector_index.py), the bench's recall unchanged.
  Still inside the row (STORAGE MAIN, migration 0009), set in the same
  statement, so the rewrite already stores it there.
- ix_memories_user_nearest: (user_id, embedding_model, kind) INCLUDE (id,
  embedding), so the search is an index-only scan of the user's entries.
  A B-tree entry holds at most 2,704 bytes: embeddings wider than 1,024
  dimensions (vectors.COVERED_DIMENSIONS) are left out of it, and searched in
  the table as before.
- it replaces ix_memories_user_embedding_model (0005), whose two columns lead it.
Measured with bench/memory_load --vectors: nearest search 10.7 -> 5.0 ms p50 at
10,000 memories among 1,000,000 (halfvec alone: 7.1 ms).

The type change rewrites the table under an exclusive lock, and VACUUM then
reads it: about a minute per million memories on the bench's machine
(docs/benchmarks.md). The table shrinks by a third; the index takes about 1 GB
per million embedded memories. Without pgvector (no `embedding` column) or with
a pgvector older than 0.7 (no halfvec), nothing changes: recall works on the
`vector` column as before.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_EMBEDDING_TYPE = sa.text(
    "SELECT atttypid::regtype::text FROM pg_attribute WHERE attrelid = 'memories'::regclass "
    "AND attname = 'embedding' AND NOT attisdropped"
)
_HAS_HALFVEC = sa.text("SELECT to_regtype('halfvec') IS NOT NULL")
COVERED_DIMENSIONS = 1024  # memory/vectors.py: its queries repeat this predicate


def _embedding_type() -> str | None:
    return op.get_bind().execute(_EMBEDDING_TYPE).scalar()


def upgrade() -> None:
    if _embedding_type() != "vector" or not op.get_bind().execute(_HAS_HALFVEC).scalar():
        return
    op.execute(
        "ALTER TABLE memories ALTER COLUMN embedding TYPE halfvec USING embedding::halfvec, "
        "ALTER COLUMN embedding SET STORAGE MAIN"
    )
    op.execute("DROP INDEX IF EXISTS ix_memories_user_embedding_model")
    op.execute(
        "CREATE INDEX ix_memories_user_nearest ON memories (user_id, embedding_model, kind) "
        "INCLUDE (id, embedding) "
        f"WHERE embedding IS NOT NULL AND vector_dims(embedding) <= {COVERED_DIMENSIONS}"
    )
    _vacuum()


def downgrade() -> None:
    if _embedding_type() != "halfvec":
        return
    op.execute("DROP INDEX IF EXISTS ix_memories_user_nearest")
    op.execute(
        "ALTER TABLE memories ALTER COLUMN embedding TYPE vector USING embedding::vector, "
        "ALTER COLUMN embedding SET STORAGE MAIN"
    )
    op.execute(
        "CREATE INDEX ix_memories_user_embedding_model ON memories (user_id, embedding_model) "
        "WHERE embedding IS NOT NULL"
    )
    _vacuum()


def _vacuum() -> None:
    """The rewrite leaves the table without a visibility map (an index-only scan
    would read every row from the table too) and the column without statistics;
    VACUUM cannot run inside the migration's transaction."""
    with op.get_context().autocommit_block():
        op.execute("VACUUM (ANALYZE) memories")
