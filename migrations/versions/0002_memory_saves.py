"""memory saves: a pending marker per session, one summary per session

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Messages up to this seq have been through memory extraction; anything
    # after it is a save still owed (picked up after a crash).
    op.add_column(
        "chat_sessions",
        sa.Column("memory_saved_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index(
        "ix_chat_sessions_memory_pending",
        "chat_sessions",
        ["id"],
        postgresql_where=sa.text(
            "user_id IS NOT NULL AND memory_enabled AND memory_saved_seq < last_seq"
        ),
    )
    op.create_index(
        "ux_memories_summary_per_session",
        "memories",
        ["user_id", "source_session_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'summary'"),
    )


def downgrade() -> None:
    op.drop_index("ux_memories_summary_per_session", table_name="memories")
    op.drop_index("ix_chat_sessions_memory_pending", table_name="chat_sessions")
    op.drop_column("chat_sessions", "memory_saved_seq")
