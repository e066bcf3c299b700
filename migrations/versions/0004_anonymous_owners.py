"""anonymous owners: only tokens the server issued prove an anonymous identity

Revision ID: 0004
Revises: 0003

Before this, any token a client made up was adopted as an anonymous owner. Owners
of existing anonymous sessions are not carried over: nothing tells a token the
server issued from one a client made up (or planted in a victim's browser), so
those sessions become unreachable and expire as usual (24 hours idle at most).

The terminal's owner (`threadline chat`, the CLI without --user) was the hash of a
public string, so anyone could send it over HTTP. Its sessions move to a marker
that is not the SHA-256 of anything (not 64 hex digits) and is never registered here.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_TERMINAL = hashlib.sha256(b"threadline-terminal").hexdigest()
TERMINAL = "local:terminal"  # app/cli/owner.py TERMINAL_OWNER


def upgrade() -> None:
    op.create_table(
        "anonymous_owners",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index(
        op.f("ix_anonymous_owners_expires_at"), "anonymous_owners", ["expires_at"], unique=False
    )
    op.execute(
        sa.text(
            "UPDATE chat_sessions SET anon_token_hash = :new WHERE anon_token_hash = :old"
        ).bindparams(new=TERMINAL, old=OLD_TERMINAL)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE chat_sessions SET anon_token_hash = :old WHERE anon_token_hash = :new"
        ).bindparams(new=TERMINAL, old=OLD_TERMINAL)
    )
    op.drop_index(op.f("ix_anonymous_owners_expires_at"), table_name="anonymous_owners")
    op.drop_table("anonymous_owners")
