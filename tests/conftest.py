"""Shared fixtures: a real PostgreSQL database, migrated once, emptied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from memory.db import Database, open_database
from memory.embeddings import LocalEmbedder
from memory.journal import Journal
from memory.schema import migrate_sync
from memory.sessions import SessionStore
from tests.support.database import postgres_server, throwaway_database, truncate_all
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: see tests/e2e/conftest.py."""
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid.replace("\\", "/"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> Iterator[str]:
    """One migrated database for the test session."""
    with throwaway_database(pg_server) as url:
        migrate_sync(url)
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    truncate_all(database_url)
    database = await open_database(database_url, pool_size=6)
    yield database
    await database.close()


@pytest.fixture
def sessions(db: Database) -> SessionStore:
    return SessionStore(db, anon_ttl=timedelta(hours=24))


@pytest.fixture
def journal(db: Database) -> Journal:
    return Journal(db, anon_ttl=timedelta(hours=24))


# Servers: a real `threadline serve` in a child process (tests/support/server.py).


@pytest.fixture(scope="session")
def server_database(pg_server: str) -> Iterator[str]:
    """The server's own database: unit tests truncate theirs, so never share it."""
    with throwaway_database(pg_server, prefix="tl_server") as url:
        migrate_sync(url)
        yield url


@pytest.fixture(scope="session")
def server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One shared server; tests make their own users and sessions, so none sees another's."""
    proc = ServerProcess(server_database, tmp_path_factory.mktemp("server") / "server.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(server_database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that kill or restart it."""
    proc = ServerProcess(
        server_database, tmp_path / "server.log", THREADLINE_OFFLINE_TOKEN_DELAY_MS="30"
    )
    yield proc
    proc.kill()


@pytest.fixture
def proxy(server_database: str) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the server database that a test can cut."""
    url = make_url(server_database)
    tcp = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    tcp.start()
    yield tcp
    tcp.stop()


# Vectors: an embedded PostgreSQL 18 (it ships pgvector; the system one here may not).


@pytest.fixture(scope="session")
def vector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded PostgreSQL 18 of this test session (it has pgvector)."""
    from memory.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("vector-pg") / "pg", database="postgres")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vector_url(vector_server: str) -> Iterator[str]:
    with throwaway_database(vector_server) as url:
        migrate_sync(url)
        yield url


@pytest.fixture(scope="session")
def local_embedder() -> LocalEmbedder:
    return LocalEmbedder()
