"""Expired sessions are removed periodically inside `threadline serve`, by one
process of a fleet at a time (a PostgreSQL advisory lock elects it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import psycopg

from memory.db import libpq_url
from memory.maintenance import cleanup_expired

if TYPE_CHECKING:
    from app.services import Services

log = logging.getLogger(__name__)
CLEANUP_LOCK_KEY = 7_346_211_906


async def cleanup_once(services: Services) -> int | None:
    """Clean up if no other process is doing it; None when another one is."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(services.db.url), autocommit=True
    ) as conn:
        got = await (
            await conn.execute("SELECT pg_try_advisory_lock(%s)", (CLEANUP_LOCK_KEY,))
        ).fetchone()
        if not got or not got[0]:
            return None
        try:
            return await cleanup_expired(
                services.sessions,
                retention=services.sessions.retention,
                forget_memories=services.settings.cleanup_forgets_memories,
            )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (CLEANUP_LOCK_KEY,))


async def cleanup_forever(services: Services) -> None:
    interval = services.settings.cleanup_interval_s
    while True:
        try:
            removed = await cleanup_once(services)
            if removed:
                log.info("expired sessions deleted", extra={"count": removed})
        except (psycopg.Error, OSError):
            log.warning("cleanup skipped: database unavailable")
        await asyncio.sleep(interval)


def start_cleanup(services: Services) -> asyncio.Task[None] | None:
    if services.settings.cleanup_interval_s <= 0:
        return None
    return asyncio.create_task(cleanup_forever(services), name="session-cleanup")


async def stop_cleanup(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
