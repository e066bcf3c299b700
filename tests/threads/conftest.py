"""The thread layer on a real PostgreSQL: a runtime as the server opens it, and a
second lock connection standing in for another server process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from graph.offline import OfflineChatModel
from tests.support.database import truncate_all
from tests.support.locks import opened_locks
from threads.locks import ThreadLocks
from threads.options import ThreadOptions
from threads.runtime import Runtime, open_runtime

SLOW_TOKENS_MS = 20  # a turn streams for about a second: long enough to act during it


OpenRuntime = Callable[..., contextlib.AbstractAsyncContextManager[Runtime]]


@pytest.fixture
def runtime_with(database_url: str) -> OpenRuntime:
    """Opens a runtime on an emptied database, with a slow offline model and
    these ThreadOptions besides the usual ones."""

    @contextlib.asynccontextmanager
    async def opened(**changes: Any) -> AsyncIterator[Runtime]:
        truncate_all(database_url)
        options = ThreadOptions(anon_ttl=timedelta(hours=24), db_pool_size=4, **changes)
        model = OfflineChatModel(token_delay_ms=SLOW_TOKENS_MS)
        async with open_runtime(database_url, options, model) as runtime:
            yield runtime

    return opened


@pytest.fixture
async def runtime(runtime_with: OpenRuntime) -> AsyncIterator[Runtime]:
    async with runtime_with(lock_wait_s=10) as opened:
        yield opened


@pytest.fixture
async def other_process(database_url: str) -> AsyncIterator[ThreadLocks]:
    """Thread locks held on a connection of their own, as another process holds them."""
    async with opened_locks(database_url) as locks:
        yield locks
