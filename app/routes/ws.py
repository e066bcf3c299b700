"""The WebSocket protocol: `/ws/sessions/{id}`. See docs/protocol.md.

Every frame a socket sends goes through one queue and one writer task, so live
run events, replies and replays never interleave mid-frame. Rights are checked
at connect, again for every query, and again whenever the thread layer says the
access of this user or thread changed (a logout, a claim, a password change, a
deleted account or thread): a socket that lost its rights is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.deps import credentials_of, get_settings, get_threads
from app.ratelimit import client_ip, rate_limits_of
from app.schemas import session_out
from graph.state import Query
from memory.errors import SessionNotFound, ThreadlineError
from memory.models import ChatSession
from threads import metrics
from threads.access import Credentials, NotSignedIn
from threads.events import ACCESS_CHANGED, Watcher, error_frame
from threads.operations import Threads

log = logging.getLogger(__name__)
router = APIRouter()

CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN_ORIGIN, CLOSE_NOT_FOUND = 4401, 4403, 4404
RECENT_MESSAGES = 50
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class QueryFrame(BaseModel):
    type: Literal["query"]
    id: str = Field(pattern=UUID_PATTERN)
    content: str


class ResumeFrame(BaseModel):
    type: Literal["resume"]
    after_seq: int = Field(ge=0)


class CancelFrame(BaseModel):
    type: Literal["cancel"]


class PingFrame(BaseModel):
    type: Literal["ping"]


ClientFrame = TypeAdapter(
    Annotated[QueryFrame | ResumeFrame | CancelFrame | PingFrame, Field(discriminator="type")]
)


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
        self.max_frame_bytes = get_settings(socket).max_frame_bytes
        self.watcher: Watcher = threads.watch(session)

    @property
    def outbox(self) -> asyncio.Queue[dict[str, Any]]:
        return self.watcher.queue

    @classmethod
    async def admit(cls, socket: WebSocket, session_id: str) -> ThreadConnection | None:
        """The connection, if this socket may watch the thread; else closed with the code."""
        if not origin_allowed(socket, get_settings(socket).allowed_origins):
            await socket.close(CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
            return None
        threads, credentials = get_threads(socket), credentials_of(socket)
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
        writer = asyncio.create_task(self.write_frames())
        metrics.ACTIVE_SOCKETS.inc()
        try:
            await self.outbox.put(await self.session_frame())
            await self.read_frames()
        except WebSocketDisconnect:
            pass
        finally:
            metrics.ACTIVE_SOCKETS.dec()
            self.threads.unwatch(self.watcher)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def session_frame(self) -> dict[str, Any]:
        session = self.session
        messages, has_more = await self.threads.deps.journal.page(
            session.id, limit=RECENT_MESSAGES
        )
        return {
            "type": "session",
            "session": session_out(session, messages[-1] if messages else None),
            "messages": [m.as_dict() for m in messages],
            "has_more": has_more,
            "active_run": await self.threads.is_running(session.id),
        }

    async def write_frames(self) -> None:
        while True:
            frame = await self.outbox.get()
            if frame is ACCESS_CHANGED:
                if not await self.still_allowed():
                    return
                continue
            if self.socket.application_state != WebSocketState.CONNECTED:
                return
            try:
                await self.socket.send_text(json.dumps(frame, ensure_ascii=False, default=str))
            except (WebSocketDisconnect, RuntimeError):
                return  # the reader notices the disconnect and cleans up

    async def still_allowed(self) -> bool:
        """Check the rights again; close the socket (4401, or 4404 when the thread is
        gone) if this identity may no longer use it."""
        try:
            self.session = await self.threads.authorize(self.credentials, self.session.id)
            return True
        except (NotSignedIn, SessionNotFound):
            pass
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
            await self.replay(frame.after_seq)
        else:
            return await self.submit_query(frame)
        return True

    async def submit_query(self, frame: QueryFrame) -> bool:
        if not await self.still_allowed():
            return False
        try:
            await rate_limits_of(self.socket).turn(
                client_ip(self.socket), anonymous=self.session.user_id is None
            )
            query = Query(id=frame.id, content=frame.content)
            for reply in await self.threads.ask(self.session, query):
                self.outbox.put_nowait(reply)
        except ThreadlineError as exc:
            self.outbox.put_nowait({**error_frame(exc.code, str(exc)), "id": frame.id})
        return True

    async def replay(self, after_seq: int) -> None:
        """Every journaled message after `after_seq`, then a `resumed` marker.

        Whether a run is active is read before the journal: a run that ends in
        between has its answer in the pages read; one still running delivers it
        live to this (already subscribed) socket.
        """
        active = await self.threads.is_running(self.session.id)
        last_seq = after_seq
        async for page in self.threads.messages_after(self.session.id, after_seq, page=200):
            for message in page:
                self.outbox.put_nowait(
                    {"type": "message", "message": message.as_dict(), "replayed": True}
                )
            last_seq = page[-1].seq
        self.outbox.put_nowait(
            {"type": "resumed", "after_seq": after_seq, "last_seq": last_seq, "active_run": active}
        )


def describe(exc: ValidationError) -> str:
    """A short, safe description of what is wrong with a frame."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(problems)
