"""memories.embedding kept inside the row (STORAGE MAIN), where pgvector is on

A memory's embedding (384 floats, 1.5 kB) beside a long content passed the
row's 2 kB TOAST threshold, and PostgreSQL moved the embedding out of line: the
nearest search, which reads every embedding of one user, then made a TOAST
lookup per row. With MAIN the long content goes out of line first. Measured
with bench/memory_load --vectors on a copy of each user's rows: nearest search
12.1 -> 8.7 ms p50 at 10,000 memories (docs/benchmarks.md). Rows take it when
next written (an edit, a re-embedding).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_HAS_EMBEDDING = sa.text(
    "SELECT 1 FROM pg_attribute WHERE attrelid = 'memories'::regclass "
    "AND attname = 'embedding' AND NOT attisdropped"
)


def upgrade() -> None:
    if op.get_bind().execute(_HAS_EMBEDDING).scalar():
        op.execute("ALTER TABLE memories ALTER COLUMN embedding SET STORAGE MAIN")


def downgrade() -> None:
    if op.get_bind().execute(_HAS_EMBEDDING).scalar():
        op.execute("ALTER TABLE memories ALTER COLUMN embedding SET STORAGE EXTERNAL")
