"""Live events of a thread for every socket watching it, in this process or another.

Local sockets get events straight from memory; other processes get them through
PostgreSQL NOTIFY on one channel. Payloads stay under NOTIFY's 8000-byte limit:
a large `message` event travels as its id and listeners read the row.

Two control messages ride the same channel: a request to cancel a thread's run
(heard by whichever process runs it) and "access changed" for a user or a
thread (a logout, a claim, a deletion), after which every watcher of that user
or thread is told to check its rights again.

A watcher's events wait in its outbox until its consumer takes them. A socket's
outbox is bounded in frames and bytes: events are delivered without waiting
(a turn never waits for a slow reader, nor do the other watchers), and one that
would pass a bound empties that outbox and marks it overflowed, so its owner can
close the consumer that fell behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from memory.db import libpq_url
from memory.journal import Journal

log = logging.getLogger(__name__)

CHANNEL = "threadline_events"
MAX_PAYLOAD = 7000
TOKEN_BATCH_S = 0.05
Event = dict[str, Any]
# Put into a watcher's queue (never sent to a client): check your rights again.
ACCESS_CHANGED: Event = {"type": "access_changed"}


def error_frame(code: str, message: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}


def frame_size(event: Event) -> int:
    """The bytes `event` takes as a UTF-8 JSON frame."""
    text = json.dumps(event, ensure_ascii=False, default=str)
    return len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class OutboxLimits:
    """How much may wait for one consumer: frames, and their bytes as JSON."""

    frames: int
    bytes: int


class Outbox(asyncio.Queue[Event]):
    """A watcher's queue of events; bounded when given limits.

    Putting never waits and never fails. An event that would pass a limit drops
    every event queued (and all later ones) and sets `overflowed`: the consumer
    has fallen behind and is to be closed. An empty outbox takes any one event,
    so a single large frame (a session snapshot) is never refused on its own.
    """

    def __init__(self, limits: OutboxLimits | None = None) -> None:
        super().__init__()
        self.limits = limits
        self.bytes = 0
        self.overflowed = asyncio.Event()
        self._sizes: deque[int] = deque()

    def put_nowait(self, item: Event) -> None:
        self.offer(item, frame_size(item) if self.limits is not None else 0)

    def offer(self, event: Event, size: int) -> None:
        """Queue `event` of `size` bytes, unless that passes a limit (see the class)."""
        if self.overflowed.is_set():
            return
        limits = self.limits
        if (
            limits is not None
            and not self.empty()
            and (self.qsize() >= limits.frames or self.bytes + size > limits.bytes)
        ):
            self._overflow()
            return
        self._sizes.append(size)
        self.bytes += size
        super().put_nowait(event)

    def _get(self) -> Event:
        self.bytes -= self._sizes.popleft()
        return super()._get()

    def _overflow(self) -> None:
        self.overflowed.set()
        while not self.empty():
            self.get_nowait()


@dataclass(eq=False)
class Watcher:
    """One socket (or terminal) watching a thread: its events queue up here."""

    session_id: str
    user_id: str | None = None
    queue: Outbox = field(default_factory=Outbox)


class EventBus:
    def __init__(self, url: str, journal: Journal) -> None:
        self.url = libpq_url(url)
        self.journal = journal
        self.origin = uuid.uuid4().hex[:12]
        self.subscribers: dict[str, set[Watcher]] = defaultdict(set)
        self._cancel_handlers: dict[str, Callable[[], object]] = {}
        self._send: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._send_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._tokens: dict[str, list[Event]] = defaultdict(list)
        self._flushers: dict[str, asyncio.Task[None]] = {}
        self._order = asyncio.Lock()

    async def open(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever(), name="event-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout=10)

    def subscribe(
        self, session_id: str, user_id: str | None = None, limits: OutboxLimits | None = None
    ) -> Watcher:
        """A new watcher of the thread; with `limits`, its outbox is bounded."""
        watcher = Watcher(session_id, user_id, Outbox(limits))
        self.subscribers[session_id].add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self.subscribers.get(watcher.session_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self.subscribers[watcher.session_id]

    def deliver(self, session_id: str, event: Event) -> None:
        """Queue `event` for every watcher of the thread, never waiting for any."""
        watchers = tuple(self.subscribers.get(session_id, ()))
        bounded = any(watcher.queue.limits is not None for watcher in watchers)
        size = frame_size(event) if bounded else 0  # measured once for them all
        for watcher in watchers:
            watcher.queue.offer(event, size)

    def on_cancel(self, session_id: str, handler: Callable[[], object]) -> None:
        """While a run of `session_id` goes on here, cancel requests call `handler`."""
        self._cancel_handlers[session_id] = handler

    def forget_cancel(self, session_id: str) -> None:
        self._cancel_handlers.pop(session_id, None)

    def cancel_here(self, session_id: str) -> bool:
        handler = self._cancel_handlers.get(session_id)
        if handler is None:
            return False
        handler()
        return True

    async def access_changed(
        self, *, user_id: str | None = None, session_id: str | None = None
    ) -> None:
        """Tell every watcher of this user or thread, in every process, to check its rights."""
        self._tell_watchers(user_id, session_id)
        await self._notify({"o": self.origin, "access": {"u": user_id, "s": session_id}})

    def _tell_watchers(self, user_id: str | None, session_id: str | None) -> None:
        for watchers in self.subscribers.values():
            for watcher in watchers:
                mine = user_id is not None and watcher.user_id == user_id
                if mine or watcher.session_id == session_id:
                    watcher.queue.put_nowait(ACCESS_CHANGED)

    async def publish(self, session_id: str, event: Event) -> None:
        """Deliver here, then tell the other processes.

        Tokens travel to other processes in batches (one NOTIFY per
        TOKEN_BATCH_S instead of one per token); any other event first flushes
        the batch, so every process sees the events in the same order.
        """
        self.deliver(session_id, event)
        if event.get("type") == "token":
            self._tokens[session_id].append(event)
            if session_id not in self._flushers:
                self._flushers[session_id] = asyncio.create_task(self._flush_later(session_id))
            return
        async with self._order:
            await self._flush(session_id)
            await self._notify({"o": self.origin, "s": session_id, "e": event})

    async def _flush_later(self, session_id: str) -> None:
        await asyncio.sleep(TOKEN_BATCH_S)
        async with self._order:
            await self._flush(session_id)

    async def _flush(self, session_id: str) -> None:
        """Send the session's pending tokens (caller holds `_order`)."""
        flusher = self._flushers.pop(session_id, None)
        if flusher is not None and flusher is not asyncio.current_task():
            flusher.cancel()
        batch = self._tokens.pop(session_id, [])
        while batch:
            chunk, size = [], 0
            while batch and size < MAX_PAYLOAD // 2:
                size += len(json.dumps(batch[0], ensure_ascii=False))
                chunk.append(batch.pop(0))
            await self._notify({"o": self.origin, "s": session_id, "batch": chunk})

    async def request_cancel(self, session_id: str) -> None:
        """Stop this thread's run here, or ask whichever process runs it."""
        if not self.cancel_here(session_id):
            await self._notify({"o": self.origin, "s": session_id, "cancel": True})

    async def _notify(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, ensure_ascii=False, default=str)
        if len(text.encode()) > MAX_PAYLOAD:
            text = json.dumps(shrink(payload), ensure_ascii=False, default=str)
        try:
            async with self._send_lock:
                if self._send is None or self._send.closed or self._send.broken:
                    self._send = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=5
                    )
                await self._send.execute("SELECT pg_notify(%s, %s)", (CHANNEL, text))
        except psycopg.Error:
            # Local sockets already have the event; remote tabs catch up by `resume`.
            log.warning("could not notify other processes", exc_info=True)

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=5
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.5
                    async for note in conn.notifies():
                        await self._received(note.payload)
            except psycopg.Error:
                log.warning("event listener lost its connection; retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    async def _received(self, text: str) -> None:
        payload = json.loads(text)
        if payload.get("o") == self.origin:
            return
        if "access" in payload:
            self._tell_watchers(payload["access"].get("u"), payload["access"].get("s"))
            return
        session_id = payload["s"]
        if payload.get("cancel"):
            self.cancel_here(session_id)
            return
        if session_id not in self.subscribers:
            return
        for token in payload.get("batch", []):
            self.deliver(session_id, token)
        if "e" not in payload:
            return
        event = payload["e"]
        if "message_id" in event:
            message = await self.journal.get(event.pop("message_id"))
            if message is None:
                return
            event["message"] = message.as_dict()
        self.deliver(session_id, event)

    async def close(self) -> None:
        for flusher in list(self._flushers.values()):
            flusher.cancel()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._send is not None:
            await self._send.close()


def shrink(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload small enough for NOTIFY: big parts become ids to read back."""
    if "e" not in payload:
        return payload  # token batches are cut to size where they are made
    event = dict(payload["e"])
    if "message" in event:
        event["message_id"] = event.pop("message")["id"]
    if "memories" in event:
        event["memories"] = []
    return {**payload, "e": event}
