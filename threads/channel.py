"""This process's side of the one NOTIFY channel all processes share.

Sending: one background task takes whatever waits (items of every thread, in
the order they came) and sends it in as few NOTIFYs as fit under PostgreSQL's
8000-byte limit, so a busy process sends few and a quiet one sends each item
at once (no timer holds anything back). Nothing is sent while no other process
listens: each listener connection carries a name, visible in
`pg_stat_activity`, and says hello on the channel when it starts, so the
others know at once.

Listening: a connection of its own LISTENs (reconnecting with a backoff) and
hands each item of another process's payloads to the receiver it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from memory.db import libpq_url
from threads.outbox import text_size

log = logging.getLogger(__name__)

CHANNEL = "threadline_events"
MAX_PAYLOAD = 7000  # bytes of one NOTIFY payload we fill up to
NOTIFY_LIMIT = 7999  # PostgreSQL refuses a payload of 8000 bytes or more
MAX_WAITING = 20_000  # items waiting to be sent; past it, new ones reach no other process
LISTENER_NAME = "threadline-events"  # application_name of each process's listener, + origin
PEERS_CHECKED_EVERY_S = 1.0
# Whether another process listens: its listener connection, seen in pg_stat_activity.
_PEERS_SQL = """
    SELECT EXISTS (
        SELECT 1 FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE %s
           AND application_name <> %s)
"""
Receiver = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class _Waiting:
    """One item of a payload, JSON already; `sent` for senders that wait."""

    text: str
    sent: asyncio.Future[None] | None = None


class Channel:
    def __init__(self, url: str, receive: Receiver) -> None:
        self.url = libpq_url(url)
        self.receive = receive
        self.origin = uuid.uuid4().hex[:12]
        self._mine = f'{{"o":"{self.origin}"'  # how this process's payloads begin
        self._hello = f'{self._mine},"m":[]}}'  # sent by the listener when it starts
        self._listener_name = f"{LISTENER_NAME} {self.origin}"
        self._peers = True  # whether another process listens (checked before sending)
        self._peers_checked = float("-inf")
        self._waiting: deque[_Waiting] = deque()
        self._to_send = asyncio.Event()
        self._send: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._dropped = 0

    async def open(self) -> None:
        """Start sending and listening; return once the listener is in place."""
        self._sender = asyncio.create_task(self._send_forever(), name="event-sender")
        self._listener = asyncio.create_task(self._listen_forever(), name="event-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=10)

    def alone(self) -> bool:
        """No other process listened when last checked, and that was recently."""
        recent = time.monotonic() - self._peers_checked < PEERS_CHECKED_EVERY_S
        return not self._peers and recent

    def send(self, item: str, sent: asyncio.Future[None] | None = None) -> None:
        """Queue one item (JSON text) for the other processes, never waiting."""
        if len(self._waiting) >= MAX_WAITING and sent is None:
            self._dropped += 1  # the database is too slow or away; see _send_forever
            return
        self._waiting.append(_Waiting(item, sent))
        self._to_send.set()

    async def send_and_wait(self, item: dict[str, Any]) -> None:
        """Queue one item and wait until the NOTIFY carrying it is sent (or skipped)."""
        sent = asyncio.get_running_loop().create_future()
        self.send(json.dumps(item, ensure_ascii=False, default=str), sent)
        await sent

    def _next_payload(self) -> tuple[str, list[asyncio.Future[None]]]:
        """As many waiting items as fit in one payload (always at least one)."""
        items: list[str] = []
        futures: list[asyncio.Future[None]] = []
        size = len(self._mine) + 10
        while self._waiting:
            item = self._waiting[0]
            grown = size + text_size(item.text) + 1
            if items and grown > MAX_PAYLOAD:
                break
            self._waiting.popleft()
            items.append(item.text)
            size = grown
            if item.sent is not None:
                futures.append(item.sent)
        return f'{self._mine},"m":[{",".join(items)}]}}', futures

    async def _send_forever(self) -> None:
        while True:
            await self._to_send.wait()
            self._to_send.clear()
            while self._waiting:
                payload, futures = self._next_payload()
                try:
                    if await self._peers_listen():
                        await self._notify(payload)
                finally:
                    for future in futures:
                        if not future.done():
                            future.set_result(None)
            if self._dropped:
                log.warning("%d events reached no other process: NOTIFY fell behind", self._dropped)
                self._dropped = 0

    async def _peers_listen(self) -> bool:
        """Whether another process listens: read at most once a PEERS_CHECKED_EVERY_S,
        and known at once when one starts (its listener's hello) or speaks.

        A process alone (one server, no CLI open) sends no NOTIFY at all.
        """
        now = time.monotonic()
        if now - self._peers_checked < PEERS_CHECKED_EVERY_S:
            return self._peers
        self._peers_checked = now
        try:
            conn = await self._sending_connection()
            cur = await conn.execute(_PEERS_SQL, (f"{LISTENER_NAME} %", self._listener_name))
            row = await cur.fetchone()
            self._peers = bool(row and row[0])
        except psycopg.Error:
            self._peers = True  # unknown: try to send (which logs what is wrong)
        return self._peers

    def _peer_heard(self) -> None:
        self._peers, self._peers_checked = True, time.monotonic()

    async def _sending_connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._send is None or self._send.closed or self._send.broken:
            self._send = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=5
            )
        return self._send

    async def _notify(self, payload: str) -> None:
        if text_size(payload) > NOTIFY_LIMIT:
            log.warning("an event too large to notify other processes was left out")
            return
        try:
            conn = await self._sending_connection()
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
        except psycopg.Error:
            # Local sockets already have the event; remote tabs catch up by `resume`.
            log.warning("could not notify other processes", exc_info=True)

    # Listening: what the other processes send

    async def _listen_forever(self) -> None:
        """Listen; on each (re)connection say hello, which tells the other processes
        at once that this one listens, and tells this one, when it comes back, that
        its listener is in place."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=self._listener_name,
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._hello))
                    delay = 0.5
                    async for note in conn.notifies():
                        if not note.payload.startswith(self._mine):
                            self._peer_heard()
                            await self._received(note.payload)
                        elif note.payload == self._hello:
                            self._listening.set()
            except psycopg.Error:
                log.warning("event listener lost its connection; retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    async def _received(self, text: str) -> None:
        for item in json.loads(text).get("m", []):
            await self.receive(item)

    async def close(self) -> None:
        """Send what waits (for up to 2 s), then stop sending and listening."""
        if self._sender is not None and not self._sender.done() and self._waiting:
            last = self._waiting[-1]
            if last.sent is None:
                last.sent = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(last.sent), timeout=2)
        for task in (self._sender, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._send is not None:
            await self._send.close()
