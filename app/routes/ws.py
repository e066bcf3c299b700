"""The WebSocket protocol: `/ws/sessions/{id}`. See docs/protocol.md.

Every frame a socket sends goes through one queue (its outbox) and one writer
task, so live run events, replies and replays never interleave mid-frame. Rights
are checked at connect, again for every query, and again whenever the thread
layer says the access of this user or thread changed (a logout, a claim, a
password change, a deleted account or thread): a socket that lost its rights is
closed.

The outbox is bounded (THREADLINE_OUTBOX_FRAMES, THREADLINE_OUTBOX_BYTES): a
client that does not read what it is sent is closed with 4408, and its queue
dropped. A replay is read from the journal one page at a time, by the writer,
only once the page before it is written, so a `resume` costs one page of memory
however long the journal is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.deps import credentials_of, runtime_of, settings_of
from app.ratelimit import client_ip, rate_limits_of
from app.routes.ws_frames import (
    CancelFrame,
    ClientFrame,
    EditFrame,
    PingFrame,
    QueryFrame,
    RegenerateFrame,
    ResumeFrame,
    describe,
)
from app.schemas import session_out
from graph.state import Query
from memory.errors import SessionNotFound, ThreadlineError
from memory.models import ChatMessage, ChatSession
from threads import metrics
from threads.access import Credentials, NotSignedIn
from threads.events import (
    ACCESS_CHANGED,
    Outbox,
    OutboxLimits,
    Watcher,
    encode_frame,
    error_frame,
)
from threads.operations import Threads

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN_ORIGIN, CLOSE_NOT_FOUND = 4401, 4403, 4404
CLOSE_TOO_SLOW = 4408
# The close frame of a socket that does not read waits behind what is already
# on its wire; after this long the server stops waiting (the connection is then
# left to the transport, which holds at most its write buffer).
TOO_SLOW_CLOSE_WAIT_S = 10.0
RECENT_MESSAGES = 50
REPLAY_PAGE = 50  # messages read from the journal per replay step
REPLAY_STEP = "replay_step"  # an outbox entry (never sent): write the next page


@dataclass(eq=False)
class Replay:
    """A `resume` being answered: the journal after `after_seq`, a page per step."""

    after_seq: int
    active_run: bool
    pages: AsyncIterator[list[ChatMessage]]
    last_seq: int

    def resumed_frame(self) -> dict[str, Any]:
        return {
            "type": "resumed",
            "after_seq": self.after_seq,
            "last_seq": self.last_seq,
            "active_run": self.active_run,
        }


def origin_allowed(socket: WebSocket, allowed: list[str]) -> bool:
    """Browsers send Origin; it must be this app's own or an allowed one.
    Non-browser clients send none and are let through (auth still applies)."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == socket.headers.get("host") or origin in allowed


@router.websocket("/ws/sessions/{session_id}")
async def session_socket(socket: WebSocket, session_id: str) -> None:
    # Accept first: a close code sent before accepting never reaches a browser.
    await socket.accept()
    connection = await ThreadConnection.admit(socket, session_id)
    if connection is not None:
        await connection.serve()


class ThreadConnection:
    """One socket on one thread: who it is, what it watches, its frames in and out."""

    def __init__(
        self,
        socket: WebSocket,
        threads: Threads,
        credentials: Credentials,
        session: ChatSession,
    ) -> None:
        self.socket = socket
        self.threads = threads
        self.credentials = credentials
        self.session = session
        settings = settings_of(socket)
        self.max_frame_bytes = settings.max_frame_bytes
        limits = OutboxLimits(frames=settings.outbox_frames, bytes=settings.outbox_bytes)
        self.watcher: Watcher = threads.watch(session, limits)
        self.replay: Replay | None = None  # the latest resume, while it replays

    @property
    def outbox(self) -> Outbox:
        return self.watcher.queue

    @classmethod
    async def admit(cls, socket: WebSocket, session_id: str) -> ThreadConnection | None:
        """The connection, if this socket may watch the thread; else closed with the code."""
        if not origin_allowed(socket, settings_of(socket).allowed_origins):
            await socket.close(CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
            return None
        threads, credentials = runtime_of(socket).threads, credentials_of(socket)
        try:
            session = await threads.authorize(credentials, session_id)
        except NotSignedIn:
            await socket.close(CLOSE_UNAUTHENTICATED, "log in or create a session first")
            return None
        except SessionNotFound:
            await socket.close(CLOSE_NOT_FOUND, "session not found")
            return None
        return cls(socket, threads, credentials, session)

    async def serve(self) -> None:
        """Read and write until the client leaves, or falls behind (then close 4408)."""
        metrics.ACTIVE_SOCKETS.inc()
        try:
            # The session frame goes first: the frames that came since the socket
            # started watching wait in its outbox, and follow on from it.
            if await self.send(await self.session_frame()):
                await self.read_and_write()
        finally:
            self.threads.unwatch(self.watcher)
            self.replay = None
            metrics.ACTIVE_SOCKETS.dec()
        # A socket that fell behind is done with before its close frame goes: that
        # frame waits behind what is on the wire, for as long as the client reads not.
        if self.outbox.overflowed.is_set():
            await self.close_too_slow()

    async def read_and_write(self) -> None:
        writer = asyncio.create_task(self.write_frames(), name="socket-writer")
        reader = asyncio.create_task(self.read_session(), name="socket-reader")
        too_slow = asyncio.create_task(self.outbox.overflowed.wait(), name="socket-outbox")
        try:
            # The writer ends by itself when the socket is gone or lost its rights.
            tasks = {reader, writer, too_slow}
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer, too_slow):
                task.cancel()
            ended = await asyncio.gather(reader, writer, too_slow, return_exceptions=True)
        if self.outbox.overflowed.is_set():
            return
        for outcome in ended[:2]:
            if isinstance(outcome, Exception):
                raise outcome

    async def read_session(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            await self.read_frames()

    async def close_too_slow(self) -> None:
        """Its frames are dropped; the close frame says why, should the client read again."""
        log.warning("closing a socket that does not read", extra={"session_id": self.session.id})
        with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
            async with asyncio.timeout(TOO_SLOW_CLOSE_WAIT_S):
                await self.socket.close(CLOSE_TOO_SLOW, "too slow: the client is not reading")

    async def session_frame(self) -> dict[str, Any]:
        """The thread as this socket starts watching it: its last messages and, while
        an answer streams, the text it has streamed so far (`answer_so_far`), which
        the token frames that follow this one continue."""
        session = self.session
        messages, has_more = await self.threads.deps.journal.page(session.id, limit=RECENT_MESSAGES)
        active_run = await self.threads.is_running(session.id)
        frame = {
            "type": "session",
            "session": session_out(session, messages[-1] if messages else None),
            "messages": [m.as_dict() for m in messages],
            "has_more": has_more,
            "active_run": active_run,
        }
        if active_run and self.watcher.so_far is not None:
            frame["answer_so_far"] = self.watcher.so_far
        return frame

    async def write_frames(self) -> None:
        while True:
            frame = await self.outbox.get_frame()
            event = frame.event
            if event is ACCESS_CHANGED:
                written = await self.still_allowed()
            elif event["type"] == REPLAY_STEP:
                written = await self.replay_step(event)
            else:  # the outbox is bounded, so its frames come encoded
                written = await self.send_text(frame.text or encode_frame(event))
            if not written:
                return  # the reader notices the disconnect and cleans up

    async def send(self, frame: dict[str, Any]) -> bool:
        """Write one frame; False once the socket is gone."""
        return await self.send_text(encode_frame(frame))

    async def send_text(self, text: str) -> bool:
        """Write one frame's JSON text; False once the socket is gone."""
        if self.socket.application_state != WebSocketState.CONNECTED:
            return False
        try:
            await self.socket.send_text(text)
        except (WebSocketDisconnect, RuntimeError):
            return False
        return True

    async def still_allowed(self) -> bool:
        """Check the rights again; close the socket (4401, or 4404 when the thread is
        gone) if this identity may no longer use it."""
        try:
            self.session = await self.threads.authorize(self.credentials, self.session.id)
            return True
        except (NotSignedIn, SessionNotFound):
            return await self.refused()

    async def refused(self) -> bool:
        """Close the socket whose identity lost its rights: 4401, or 4404 when the
        thread itself is gone. Always False (the socket is done)."""
        try:
            await self.threads.deps.sessions.get(self.session.id)
            code, reason = CLOSE_UNAUTHENTICATED, "your access to this session has changed"
        except SessionNotFound:
            code, reason = CLOSE_NOT_FOUND, "session not found"
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.socket.close(code, reason)
        return False

    async def read_frames(self) -> None:
        limit = self.max_frame_bytes
        while True:
            message = await self.socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.outbox.put_nowait(error_frame("invalid_frame", "send JSON text frames"))
            elif len(text.encode()) > limit:
                self.outbox.put_nowait(
                    error_frame("frame_too_large", f"frames are limited to {limit} bytes")
                )
            elif not await self.handle_frame(text):
                return

    async def handle_frame(self, text: str) -> bool:
        """Act on one client frame; False when the socket must close."""
        try:
            frame = ClientFrame.validate_json(text)
        except ValidationError as exc:
            self.outbox.put_nowait(error_frame("invalid_frame", describe(exc)))
            return True
        if isinstance(frame, PingFrame):
            self.outbox.put_nowait({"type": "pong"})
        elif isinstance(frame, CancelFrame):
            await self.threads.cancel(self.session)
        elif isinstance(frame, ResumeFrame):
            await self.resume(frame.after_seq)
        else:
            return await self.submit_query(frame)
        return True

    async def submit_query(self, frame: QueryFrame | RegenerateFrame | EditFrame) -> bool:
        """Ask (or ask again: Threads.redo); the rights are read afresh with it
        (Threads.ask_as): a socket that lost them is closed, False."""
        try:
            await rate_limits_of(self.socket).turn(
                client_ip(self.socket), anonymous=self.session.user_id is None
            )
            credentials, session_id = self.credentials, self.session.id
            if isinstance(frame, QueryFrame):
                query = Query(id=frame.id, content=frame.content)
                self.session, replies = await self.threads.ask_as(credentials, session_id, query)
            elif isinstance(frame, EditFrame):
                new = Query(id=frame.new_id, content=frame.content)
                self.session, replies = await self.threads.redo(
                    credentials, session_id, frame.id, new
                )
            else:
                self.session, replies = await self.threads.redo(credentials, session_id, frame.id)
        except (NotSignedIn, SessionNotFound):
            return await self.refused()
        except ThreadlineError as exc:
            # An edit's error names the query it would have asked (the page's pending one).
            asked = frame.new_id if isinstance(frame, EditFrame) else frame.id
            self.outbox.put_nowait({**error_frame(exc.code, str(exc)), "id": asked})
            return True
        for reply in replies:
            self.outbox.put_nowait(reply)
        return True

    async def resume(self, after_seq: int) -> None:
        """Replay every journaled message after `after_seq`, then a `resumed` marker.

        The writer sends it a page at a time (`replay_step`). A resume replaces
        one still replaying: only the latest is finished and marked `resumed`.
        Whether a run is active is read before the journal: a run that ends in
        between has its answer in the pages read; one still running delivers it
        live to this (already subscribed) socket.
        """
        active = await self.threads.is_running(self.session.id)
        pages = self.threads.messages_after(self.session.id, after_seq, page=REPLAY_PAGE)
        self.replay = Replay(after_seq, active, pages, last_seq=after_seq)
        self.outbox.put_nowait({"type": REPLAY_STEP, "replay": self.replay})

    async def replay_step(self, step: dict[str, Any]) -> bool:
        """Send the next page of a replay, then queue its next step behind what came
        meanwhile; or, past the last page, `resumed`. False once the socket is gone.

        A step of a replay that a later resume replaced is dropped (its pages with
        it: they hold no connection between pages).
        """
        replay: Replay = step["replay"]
        if replay is not self.replay:
            return True
        page = await anext(replay.pages, None)
        if page is None:
            self.replay = None
            return await self.send(replay.resumed_frame())
        for message in page:
            frame = {"type": "message", "message": message.as_dict(), "replayed": True}
            if not await self.send(frame):
                return False
        replay.last_seq = page[-1].seq
        if replay is self.replay:
            self.outbox.put_nowait(step)
        return True
