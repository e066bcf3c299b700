"""Where tests get PostgreSQL: TEST_DATABASE_URL, else 127.0.0.1:5432, else
embedded (TEST_DATABASE_URL=embedded forces the embedded server)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from memory.db import libpq_url

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
APP_TABLES = "users, auth_tokens, anonymous_owners, chat_sessions, chat_messages, memories"
CHECKPOINT_TABLES = "checkpoints, checkpoint_blobs, checkpoint_writes"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def postgres_server(scratch: Path) -> Iterator[str]:
    """A maintenance URL of a server tests may create databases on."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit and explicit != "embedded":
        yield libpq_url(explicit)
        return
    if explicit != "embedded" and _reachable(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    from memory.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(scratch / "embedded-pg", database="postgres")
    try:
        yield server.start()
    finally:
        server.stop()


@contextlib.contextmanager
def throwaway_database(server_url: str, prefix: str = "tl_test") -> Iterator[str]:
    """A fresh UTF-8 database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_all(url: str) -> None:
    """Empty every table: each test starts from a clean state."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {APP_TABLES}, {CHECKPOINT_TABLES} CASCADE")
