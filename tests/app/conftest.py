"""Server tests talk to a real uvicorn (`threadline serve`, fixtures in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.ws import Sockets


@pytest.fixture
async def ws() -> AsyncIterator[Sockets]:
    sockets = Sockets()
    yield sockets
    await sockets.close_all()


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """A client that keeps no cookies: every call says who it is in its headers (a
    browser-like client is made where a test needs one)."""
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=server.url, timeout=15, cookies=jar) as client:
        yield client


@pytest.fixture
def slow_save(server_database: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own whose save after `done` waits 5 s (the test hook)."""
    server = ServerProcess(
        server_database, tmp_path / "log", THREADLINE_MEMORY_SAVE_DELAY_MS="5000"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
