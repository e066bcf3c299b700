"""Server tests talk to a real uvicorn (`threadline serve`) on real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memory.schema import migrate_sync
from tests.support.database import throwaway_database
from tests.support.server import ServerProcess
from tests.support.ws import Sockets


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
async def ws() -> AsyncIterator[Sockets]:
    sockets = Sockets()
    yield sockets
    await sockets.close_all()
