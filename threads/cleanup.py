"""Expired sessions are removed periodically inside `threadline serve`, by one
process of a fleet at a time (a PostgreSQL advisory lock elects it). Each
session goes through `Threads.expire`, under its thread lock. The same round
finishes memory saves left owed by threads idle a while (`OWED_IDLE_S`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import psycopg

from memory.db import libpq_url
from memory.errors import DATABASE_DOWN

if TYPE_CHECKING:  # for annotations only: operations does not import this module
    from threads.operations import Threads

log = logging.getLogger(__name__)
CLEANUP_LOCK_KEY = 7_346_211_906
# A memory save owed by a thread unchanged this long is finished by the cleanup:
# its process ended first (a `threadline chat` cut off, a server that died while
# others ran on). Live threads' saves, waiting out their gap, are seconds old.
OWED_IDLE_S = 120.0
# The database went away: skip this round, try again next interval.
CLEANUP_SKIPPED: tuple[type[Exception], ...] = (psycopg.Error, OSError, *DATABASE_DOWN)


async def cleanup_once(threads: Threads) -> int | None:
    """Clean up if no other process is doing it; None when another one is."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(threads.deps.db.url), autocommit=True
    ) as conn:
        got = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s)", (CLEANUP_LOCK_KEY,))
        ).fetchone()
        if not got or not got[0]:
            return None
        try:
            removed = await threads.expire()
            await threads.memory_saver.finish_owed(idle_s=OWED_IDLE_S)
            return removed
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (CLEANUP_LOCK_KEY,))


async def cleanup_forever(threads: Threads) -> None:
    interval = threads.options.cleanup_interval_s
    while True:
        try:
            removed = await cleanup_once(threads)
            if removed:
                log.info("expired sessions deleted", extra={"count": removed})
        except CLEANUP_SKIPPED:
            log.warning("cleanup skipped: database unavailable")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def periodic_cleanup(threads: Threads) -> AsyncIterator[None]:
    """Clean up every `cleanup_interval_s` while the block runs (never when it is 0)."""
    if threads.options.cleanup_interval_s <= 0:
        yield
        return
    task = asyncio.create_task(cleanup_forever(threads), name="session-cleanup")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
