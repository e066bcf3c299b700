"""users.retention_days: an account's own retention (off by default)

Threads idle longer than it, and the memories learned from them, are deleted by
the cleanup.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("retention_days", sa.Integer()))
    op.create_check_constraint(
        "ck_users_retention_days", "users", "retention_days BETWEEN 1 AND 36500"
    )


def downgrade() -> None:
    op.drop_constraint("ck_users_retention_days", "users", type_="check")
    op.drop_column("users", "retention_days")
