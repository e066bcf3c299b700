"""Which PostgreSQL the process uses: DATABASE_URL, or the embedded one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg

from app.settings import Settings
from memory.db import libpq_url, redact_url


class DatabaseStartError(Exception):
    """One line for the operator: what failed, on which URL (no password)."""


@dataclass
class DatabaseChoice:
    """The URL to use, and how to stop the embedded server when we started one."""

    url: str
    stop: Callable[[], None] = lambda: None


@contextlib.contextmanager
def database_url(settings: Settings, *, server: bool = False) -> Iterator[DatabaseChoice]:
    """The database to use: DATABASE_URL, or the embedded cluster, started or joined
    (and finally left, and stopped by the last process out).

    `server`: this is `threadline serve`, the only one on its data directory.
    """
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        check_reachable(url)
        yield DatabaseChoice(url)
        return
    # Imported here: a process given DATABASE_URL never touches the embedded wheel.
    from memory.embedded import EmbeddedDatabaseError, EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedPostgres(settings.data_dir, server=server)
    try:
        url = embedded.start()
    except EmbeddedDatabaseError as exc:
        raise DatabaseStartError(str(exc)) from exc
    try:
        yield DatabaseChoice(url, embedded.stop)
    finally:
        embedded.stop()


def check_reachable(url: str) -> None:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5):
            pass
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseStartError(
            f"cannot reach the database at {redact_url(url)}: {reason}"
        ) from exc
