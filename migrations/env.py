"""Alembic environment: app tables only; the checkpointer's tables are left alone."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from memory.db import sqlalchemy_url
from memory.models import Base

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The checkpointer owns checkpoint* tables through its own setup(); never touch them.
    if type_ == "table" and name is not None:
        return not name.startswith("checkpoint")
    return True


def run_with(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        run_with(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Threadline's migrations run online only: set DATABASE_URL.")
run_migrations_online()
