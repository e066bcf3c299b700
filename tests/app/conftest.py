"""Server tests talk to a real uvicorn (`threadline serve`, fixtures in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.ws import Sockets


@pytest.fixture
async def ws() -> AsyncIterator[Sockets]:
    sockets = Sockets()
    yield sockets
    await sockets.close_all()
