"""A watcher's outbox: the frames due to one consumer, each encoded as JSON once.

A socket's outbox is bounded in frames and bytes: events are delivered without
waiting (a turn never waits for a slow reader, nor do the other watchers), and
one that would pass a bound empties that outbox and marks it overflowed, so its
owner can close the consumer that fell behind.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from memory.journal import is_utf8

Event = dict[str, Any]


def encode_frame(event: Event) -> str:
    """`event` as the JSON text of one frame. A lone surrogate (a model may stream
    one) has no UTF-8 form: such text is sent with \\u escapes instead."""
    text = json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":"))
    if not text.isascii() and not is_utf8(text):
        text = json.dumps(event, default=str, separators=(",", ":"))
    return text


def text_size(text: str) -> int:
    """The bytes `text` takes as UTF-8."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


@dataclass(frozen=True)
class OutboxLimits:
    """How much may wait for one consumer: frames, and their bytes as JSON."""

    frames: int
    bytes: int


@dataclass(frozen=True)
class Frame:
    """An event taken from an outbox, with its JSON text when it was encoded
    (a bounded outbox encodes every event, to count its bytes)."""

    event: Event
    text: str | None


def _continues(event: Event, token: Event) -> bool:
    """Whether `event` is the next token frame of `token`'s run."""
    return event.get("type") == "token" and event.get("run_id") == token.get("run_id")


class Outbox(asyncio.Queue[Event]):
    """A watcher's queue of events (one consumer); bounded when given limits.

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
        # Beside each queued event: the event, its text and size (the queue's own
        # deque is private to asyncio).
        self._frames: deque[tuple[Event, str | None, int]] = deque()
        self._taken: tuple[Event, str | None, int] = ({}, None, 0)  # the last one taken

    def put_nowait(self, item: Event) -> None:
        self.offer(item, encode_frame(item) if self.limits is not None else None)

    def offer(self, event: Event, text: str | None) -> None:
        """Queue `event` (with its JSON `text`, if encoded), unless that passes a limit."""
        if self.overflowed.is_set():
            return
        limits, size = self.limits, 0
        if limits is not None:
            text = text if text is not None else encode_frame(event)
            size = text_size(text)
            if not self.empty() and (
                self.qsize() >= limits.frames or self.bytes + size > limits.bytes
            ):
                self._overflow()
                return
        self._frames.append((event, text, size))
        self.bytes += size
        super().put_nowait(event)

    async def get_frame(self) -> Frame:
        """The oldest event with its text, waiting for one (for the one consumer).

        Token frames of one run queued one behind the other go out as one: a
        consumer that fell behind (a busy process, a slow socket) catches up
        with one write instead of one per frame. The joined frame starts where
        the first did (`at`): the text is the same, in fewer frames."""
        event = await self.get()
        text = self._taken[1]
        if event.get("type") != "token":
            return Frame(event, text)
        parts: list[str] = []
        while self._frames and _continues(self._frames[0][0], event):
            parts.append(str(self.get_nowait()["content"]))
        if not parts:
            return Frame(event, text)
        joined = {**event, "content": str(event["content"]) + "".join(parts)}
        return Frame(joined, encode_frame(joined))

    def _get(self) -> Event:
        self._taken = self._frames.popleft()
        self.bytes -= self._taken[2]
        return super()._get()

    def _overflow(self) -> None:
        self.overflowed.set()
        while not self.empty():
            self.get_nowait()
