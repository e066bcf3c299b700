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
from dataclasses import dataclass

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


_RELEASE = "SELECT pg_advisory_unlock(hashtextextended(s, 0)) FROM unnest(%s::text[]) s"
_TAKE = """
    SELECT pg_try_advisory_lock(hashtextextended(t.s, 0))
      FROM unnest(%s::text[]) WITH ORDINALITY t(s, i)
     ORDER BY t.i
"""


@dataclass
class _Ask:
    """A lock to take or give back, waiting for the next batch."""

    take: bool
    session_id: str
    answer: asyncio.Future[bool]


class ThreadLocks:
    """Every thread lock of this process, on one connection, taken and given back
    in batches: what is asked while a batch is at the database goes in the next
    one (its releases first, then its takes, in one round trip). A hundred turns
    starting at once wait for a few round trips, not for a hundred in a row.
    """

    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self.held: set[str] = set()
        self._taking: set[str] = set()  # asked for, in a batch not yet answered
        self._asks: list[_Ask] = []
        self._batches: asyncio.Task[None] | None = None
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
        if session_id in self.held or session_id in self._taking:
            return False
        self._taking.add(session_id)
        try:
            return await self._ask(True, session_id)
        finally:
            self._taking.discard(session_id)

    async def release(self, session_id: str) -> None:
        if session_id not in self.held:
            return
        self.held.discard(session_id)
        await self._ask(False, session_id)
        async with self._released:
            self._released.notify_all()

    def _ask(self, take: bool, session_id: str) -> asyncio.Future[bool]:
        answer = asyncio.get_running_loop().create_future()
        self._asks.append(_Ask(take, session_id, answer))
        if self._batches is None or self._batches.done():
            self._batches = asyncio.create_task(self._send_batches(), name="thread-locks")
        return answer

    async def _send_batches(self) -> None:
        while self._asks:
            asks, self._asks = self._asks, []
            async with self._use:
                await self._send(asks)

    async def _send(self, asks: list[_Ask]) -> None:
        """One round trip: the batch's releases, then its takes (in the order asked)."""
        gives = [ask.session_id for ask in asks if not ask.take]
        takes = [ask for ask in asks if ask.take]
        taken: list[bool] = []
        try:
            conn = await self._connection()
            async with conn.pipeline():
                if gives:
                    await conn.execute(_RELEASE, (gives,))
                # A batch of releases alone is one statement.
                asked = [ask.session_id for ask in takes]
                cur = await conn.execute(_TAKE, (asked,)) if takes else None
            if cur is not None:
                taken = [bool(row[0]) for row in await cur.fetchall()]
        except psycopg.Error as exc:
            # Every lock of this process goes with the connection.
            log.warning("thread lock connection failed; %d locks dropped", len(self.held))
            self.held.clear()
            if self._conn is not None:
                await self._conn.close()
            for ask in asks:
                if ask.answer.done():
                    continue
                if ask.take:
                    ask.answer.set_exception(exc)
                else:
                    ask.answer.set_result(False)
            return
        for ask, ok in zip(takes, taken, strict=True):
            if ok:  # held even if the asker went away meanwhile: release gives it back
                self.held.add(ask.session_id)
        for ask, ok in zip(takes, taken, strict=True):
            if not ask.answer.done():
                ask.answer.set_result(ok)
        for ask in asks:
            if not ask.take and not ask.answer.done():
                ask.answer.set_result(True)

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
        if self._batches is not None:
            self._batches.cancel()
        if self._conn is not None:
            await self._conn.close()
