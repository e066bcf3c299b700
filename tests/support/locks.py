"""Thread locks as a server process holds them, for tests of the lock layer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from threads.locks import ThreadLocks


@contextlib.asynccontextmanager
async def opened_locks(database_url: str) -> AsyncIterator[ThreadLocks]:
    """Thread locks on a connection of their own, as a server process holds them."""
    locks = ThreadLocks(database_url)
    await locks.open()
    try:
        yield locks
    finally:
        await locks.close()
