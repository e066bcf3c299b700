"""agent_runs, agent_run_events: the Agent Server API's runs, queued and logged

A run asked through the Agent Server API (docs/agent-server-api.md) is a row
here from the moment it is asked: `queued` while it waits for its thread
(`multitask_strategy: enqueue`), `started` once its turn was handed to a
process, `ended` or `cancelled`. Its frames are logged, numbered, in
agent_run_events, so a client can join its stream after `Last-Event-ID`, in
any process and after a restart. Bounded: a thread keeps the logs of its
newest runs only (threads/agent_runs.py).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("chat_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # Queue order: a bigint identity, never a clock.
        sa.Column("position", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("query", JSONB, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('queued', 'started', 'ended', 'cancelled')", name="agent_runs_state"
        ),
    )
    op.create_index("ix_agent_runs_session", "agent_runs", ["session_id", "position"])
    # What the queue's scan reads: the few runs not yet over.
    op.create_index(
        "ix_agent_runs_open",
        "agent_runs",
        ["state", "position"],
        postgresql_where=sa.text("state IN ('queued', 'started')"),
    )
    op.create_table(
        "agent_run_events",
        sa.Column(
            "run_id",
            sa.String(36),
            sa.ForeignKey("agent_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("n", sa.Integer, primary_key=True),
        sa.Column("frame", JSONB, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_run_events")
    op.drop_index("ix_agent_runs_open", table_name="agent_runs")
    op.drop_index("ix_agent_runs_session", table_name="agent_runs")
    op.drop_table("agent_runs")
