"""Per-thread run exclusion across every process: PostgreSQL advisory locks.

One dedicated connection per process holds all of this process's locks, so a
hundred running turns cost one connection, not a hundred pooled ones. If that
connection drops (a database restart) its locks vanish with it; it is opened
again on next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg

from memory.db import libpq_url
from memory.errors import ThreadlineError

log = logging.getLogger(__name__)


class SessionBusy(ThreadlineError):
    """A run (or a delete, merge, claim) already holds this thread."""

    code = "busy"


class ThreadLocks:
    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self.held: set[str] = set()
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._use = asyncio.Lock()

    async def open(self) -> None:
        async with self._use:
            await self._connection()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self.held:
                log.warning("lock connection lost; %d thread locks dropped", len(self.held))
                self.held.clear()
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=5
            )
        return self._conn

    async def try_acquire(self, session_id: str) -> bool:
        """Take the thread's lock if nobody, here or in another process, holds it."""
        async with self._use:
            if session_id in self.held:
                return False
            conn = await self._connection()
            cur = await conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (session_id,)
            )
            row = await cur.fetchone()
            if row is None or not row[0]:
                return False
            self.held.add(session_id)
            return True

    async def release(self, session_id: str) -> None:
        async with self._use:
            if session_id not in self.held:
                return
            self.held.discard(session_id)
            if self._conn is None or self._conn.closed or self._conn.broken:
                return  # the lock went with the connection
            try:
                await self._conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (session_id,)
                )
            except psycopg.Error:
                log.warning("could not release a thread lock; connection reset", exc_info=True)
                await self._conn.close()

    @contextlib.asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        """Hold the thread for a delete, merge or claim; busy if a run has it."""
        if not await self.try_acquire(session_id):
            raise SessionBusy("a turn is running in this session; try again when it is done")
        try:
            yield
        finally:
            await self.release(session_id)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
