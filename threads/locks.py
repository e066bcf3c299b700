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
import time
from collections.abc import AsyncIterator

import psycopg

from memory.db import libpq_url
from memory.errors import ThreadlineError

log = logging.getLogger(__name__)

# pg_locks shows a bigint advisory key as its high half in classid and its low
# half in objid (objsubid 1): the same key `pg_try_advisory_lock` takes below.
_HELD_ANYWHERE = """
    SELECT EXISTS (
        SELECT 1 FROM pg_locks, (SELECT hashtextextended(%s, 0) AS k) key
         WHERE locktype = 'advisory' AND objsubid = 1 AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND classid = ((key.k >> 32) & 4294967295)::oid
           AND objid = (key.k & 4294967295)::oid)
"""


class SessionBusy(ThreadlineError):
    """A run (or a delete, merge, claim) already holds this thread."""

    code = "busy"


class ThreadLocks:
    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self.held: set[str] = set()
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._use = asyncio.Lock()
        # Set on every local release, so a waiter retries at once instead of on a timer.
        self._released = asyncio.Condition()

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
        async with self._released:
            self._released.notify_all()

    async def acquire(self, session_id: str, *, wait_s: float = 0) -> bool:
        """Take the thread's lock, waiting up to `wait_s` for whoever holds it.

        A holder in this process wakes the waiter when it releases; one in another
        process is polled for (every 100 ms), since PostgreSQL tells nobody.
        """
        deadline = time.monotonic() + wait_s
        while not await self.try_acquire(session_id):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            async with self._released:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), timeout=min(left, 0.1))
        return True

    async def running_anywhere(self, session_id: str) -> bool:
        """Whether any process holds the thread's lock (a turn, or a delete or merge)."""
        if session_id in self.held:
            return True
        async with self._use:
            conn = await self._connection()
            cur = await conn.execute(_HELD_ANYWHERE, (session_id,))
            row = await cur.fetchone()
        return bool(row and row[0])

    @contextlib.asynccontextmanager
    async def hold(self, *session_ids: str, wait_s: float = 0) -> AsyncIterator[None]:
        """Hold threads for a delete, merge or claim; busy if a run keeps one past `wait_s`.

        Several threads are taken in one (sorted) order, so two merges of the same
        pair can never wait for each other.
        """
        taken: list[str] = []
        try:
            for session_id in sorted(set(session_ids)):
                if not await self.acquire(session_id, wait_s=wait_s):
                    raise SessionBusy(
                        "a turn is running in this session; try again when it is done"
                    )
                taken.append(session_id)
            yield
        finally:
            for session_id in reversed(taken):
                await self.release(session_id)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
