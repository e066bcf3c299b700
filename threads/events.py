"""Live events of a thread for every watcher, in this process or another.

Local watchers get an event the moment it is published, straight from memory;
nothing on that path waits for the database. Other processes get it through
the NOTIFY channel (threads/channel.py), which sends nothing while no other
process listens. A large `message` event travels there as its id and
listeners read the row.

A thread's tokens go out at most one frame per TOKEN_GAP_S: the first token of
a burst at once, the ones right behind it joined into the next frame (a model
streaming slower than that is never held), and any other event first sends
what is held, so every watcher sees the same frames in the same order.

Two control messages ride the same channel: a request to cancel a thread's run
(heard by whichever process runs it) and "access changed" for a user or a
thread (a logout, a claim, a deletion), after which every watcher of that user
or thread is told to check its rights again. Their senders wait until the
NOTIFY carrying them is sent.

Each event is encoded as JSON once: the same text is what a socket sends and
what the NOTIFY carries. A watcher's events wait in its outbox
(threads/outbox.py) until its consumer takes them.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memory.journal import Journal
from threads.channel import MAX_PAYLOAD, Channel
from threads.outbox import Event, Outbox, OutboxLimits, encode_frame, text_size

# Outbox, OutboxLimits and encode_frame are the sockets' too (app/routes/ws.py).
__all__ = ["ACCESS_CHANGED", "EventBus", "Outbox", "OutboxLimits", "Watcher", "encode_frame"]

TOKEN_GAP_S = 0.02  # at most one token frame per thread per this gap (see _publish_token)
# ...and per process about this many token frames a second, all threads together:
# with many threads streaming at once each gets a longer gap (a frame is a write
# to a socket; under full load they were a fifth of the server's CPU).
TOKEN_FRAMES_PER_S = 1000
# Put into a watcher's queue (never sent to a client): check your rights again.
ACCESS_CHANGED: Event = {"type": "access_changed"}


def error_frame(code: str, message: str) -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}


@dataclass
class AnswerSoFar:
    """The text a running answer has streamed (every token frame sent out so far)."""

    run_id: str
    parts: list[str] = field(default_factory=list)
    length: int = 0  # in characters

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def frame(self) -> dict[str, str]:
        return {"run_id": self.run_id, "content": "".join(self.parts)}


@dataclass(eq=False)
class Watcher:
    """One socket (or terminal) watching a thread: its events queue up here.

    `so_far`: the answer streaming when it started watching, as far as it had
    come; every later token frame of that run reaches its queue, so the two
    together are the whole answer, from its start."""

    session_id: str
    user_id: str | None = None
    queue: Outbox = field(default_factory=Outbox)
    so_far: dict[str, str] | None = None


class EventBus:
    def __init__(self, url: str, journal: Journal) -> None:
        self.journal = journal
        self.channel = Channel(url, self._received)
        self.subscribers: dict[str, set[Watcher]] = defaultdict(set)
        self._cancel_handlers: dict[str, Callable[[], object]] = {}
        self._held_tokens: dict[str, list[Event]] = {}
        self._token_sent_at: dict[str, float] = {}
        self._token_timers: dict[str, asyncio.TimerHandle] = {}
        # Each thread's answer streaming now, here or in another process (as far
        # as its token frames reached this one).
        self.streaming: dict[str, AnswerSoFar] = {}

    async def open(self) -> None:
        await self.channel.open()

    def subscribe(
        self, session_id: str, user_id: str | None = None, limits: OutboxLimits | None = None
    ) -> Watcher:
        """A new watcher of the thread; with `limits`, its outbox is bounded."""
        answer = self.streaming.get(session_id)
        so_far = answer.frame() if answer is not None else None
        watcher = Watcher(session_id, user_id, Outbox(limits), so_far)
        self.subscribers[session_id].add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self.subscribers.get(watcher.session_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self.subscribers[watcher.session_id]

    def deliver(self, session_id: str, event: Event, text: str | None = None) -> None:
        """Queue `event` for every watcher of the thread here, never waiting for any."""
        self._follow(session_id, event)
        watchers = self.subscribers.get(session_id)
        if not watchers:
            return
        if text is None and any(w.queue.limits is not None for w in watchers):
            text = encode_frame(event)  # once for them all
        for watcher in tuple(watchers):
            watcher.queue.offer(event, text)

    def _follow(self, session_id: str, event: Event) -> None:
        """Keep the thread's answer so far: its token frames, until its run ends
        (its answer journaled, or its error, or `done`)."""
        kind = event.get("type")
        if kind == "token":
            run_id, at = str(event.get("run_id")), event.get("at", 0)
            answer = self.streaming.get(session_id)
            if answer is None or answer.run_id != run_id:
                answer = self.streaming[session_id] = AnswerSoFar(run_id)
            if at != answer.length:  # its start was missed (this process came later)
                self.streaming.pop(session_id)
                return
            answer.add(str(event.get("content", "")))
        elif kind in ("message", "done", "error"):
            answered = kind != "message" or event.get("message", {}).get("role") == "assistant"
            if answered:
                self.streaming.pop(session_id, None)

    def publish(self, session_id: str, event: Event) -> None:
        """Deliver here at once (tokens: see `_publish_token`), and queue the event
        for the other processes. Any event but a token first sends the tokens
        held back, so every watcher sees the events in the order they came."""
        if event.get("type") == "token":
            self._publish_token(session_id, event)
            return
        self._release_tokens(session_id)
        self._token_sent_at.pop(session_id, None)  # the next token starts a burst
        self._send_out(session_id, event)

    def _publish_token(self, session_id: str, event: Event) -> None:
        """A thread sends at most one token frame per gap (`token_gap`): the first
        token of a burst goes at once; one that follows sooner waits out the rest
        of the gap with any that come meanwhile, and they go as one frame (the same
        for every watcher, here and elsewhere). A model streaming slower is never
        held."""
        held = self._held_tokens.get(session_id)
        if held is not None:
            held.append(event)
            return
        now = time.monotonic()
        wait = self._token_sent_at.get(session_id, float("-inf")) + self.token_gap() - now
        if wait <= 0:
            self._token_sent_at[session_id] = now
            self._send_out(session_id, event)
            return
        self._held_tokens[session_id] = [event]
        loop = asyncio.get_running_loop()
        self._token_timers[session_id] = loop.call_later(wait, self._release_tokens, session_id)

    def token_gap(self) -> float:
        """TOKEN_GAP_S, or longer while more threads stream at once than
        TOKEN_FRAMES_PER_S allows at that gap (threads in a burst of tokens)."""
        return max(TOKEN_GAP_S, len(self._token_sent_at) / TOKEN_FRAMES_PER_S)

    def _release_tokens(self, session_id: str) -> None:
        """Send the thread's held tokens, joined (those of one run, in order)."""
        timer = self._token_timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()
        held = self._held_tokens.pop(session_id, None)
        if not held:
            return
        self._token_sent_at[session_id] = time.monotonic()
        for _, run in itertools.groupby(held, key=lambda token: token.get("run_id")):
            tokens = list(run)
            content = "".join(str(token["content"]) for token in tokens)
            self._send_out(session_id, {**tokens[0], "content": content})

    def _send_out(self, session_id: str, event: Event) -> None:
        """Deliver here, and queue for the other processes (unless none listens).
        A token frame says where its text starts in the answer (`at`, in characters)."""
        if event.get("type") == "token":
            answer = self.streaming.get(session_id)
            same_run = answer is not None and answer.run_id == event.get("run_id")
            event = {**event, "at": answer.length if answer is not None and same_run else 0}
        if self.channel.alone():  # encoded only if a socket here watches
            self.deliver(session_id, event)
            return
        text = encode_frame(event)
        self.deliver(session_id, event, text)
        if text_size(text) > MAX_PAYLOAD - 200:
            text = encode_frame(shrink(event))
        self.channel.send(f'{{"s":"{session_id}","e":{text}}}')

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
        await self.channel.send_and_wait({"access": {"u": user_id, "s": session_id}})

    def _tell_watchers(self, user_id: str | None, session_id: str | None) -> None:
        for watchers in self.subscribers.values():
            for watcher in watchers:
                mine = user_id is not None and watcher.user_id == user_id
                if mine or watcher.session_id == session_id:
                    watcher.queue.put_nowait(ACCESS_CHANGED)

    async def request_cancel(self, session_id: str) -> None:
        """Stop this thread's run here, or ask whichever process runs it."""
        if not self.cancel_here(session_id):
            await self.channel.send_and_wait({"s": session_id, "cancel": True})

    async def _received(self, item: dict[str, Any]) -> None:
        """One item another process sent."""
        if "access" in item:
            self._tell_watchers(item["access"].get("u"), item["access"].get("s"))
            return
        session_id = item.get("s")
        if session_id is None:
            return
        if item.get("cancel"):
            self.cancel_here(session_id)
            return
        if "e" not in item:
            return
        event = item["e"]
        if session_id not in self.subscribers:
            self._follow(session_id, event)  # a socket may start watching mid-answer
            return
        if "message_id" in event:
            message = await self.journal.get(event.pop("message_id"))
            if message is None:
                return
            event["message"] = message.as_dict()
        self.deliver(session_id, event)

    async def close(self) -> None:
        """Send the tokens held back, then close the channel."""
        for session_id in list(self._held_tokens):
            self._release_tokens(session_id)
        await self.channel.close()


def shrink(event: Event) -> Event:
    """An event small enough for NOTIFY: big parts become ids to read back."""
    event = dict(event)
    if "message" in event:
        event["message_id"] = event.pop("message")["id"]
    if "memories" in event:
        event["memories"] = []
    return event
