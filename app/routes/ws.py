"""The WebSocket protocol: `/ws/sessions/{id}`. See docs/protocol.md.

Every frame a socket sends goes through one queue and one writer task, so live
run events, replies and replays never interleave mid-frame.
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

from app import metrics
from app.deps import get_services, resolve_caller
from app.errors import error_frame
from app.ratelimit import client_ip, rate_limits_of
from app.schemas import session_out
from app.services import Services
from graph.nodes import check_query
from memory.errors import SessionNotFound, ThreadlineError
from memory.models import ChatSession

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
    services = get_services(socket)
    # Accept first: a close code sent before accepting never reaches a browser.
    await socket.accept()
    session = await admit(socket, services, session_id)
    if session is None:
        return
    outbox = services.events.subscribe(session.id)
    writer = asyncio.create_task(write_frames(socket, outbox))
    metrics.ACTIVE_SOCKETS.inc()
    try:
        await outbox.put(await session_frame(services, session))
        await read_frames(socket, services, session, outbox)
    except WebSocketDisconnect:
        pass
    finally:
        metrics.ACTIVE_SOCKETS.dec()
        services.events.unsubscribe(session.id, outbox)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer


async def admit(socket: WebSocket, services: Services, session_id: str) -> ChatSession | None:
    """The session, if this socket may watch it; otherwise close with the right code."""
    if not origin_allowed(socket, services.settings.allowed_origins):
        await socket.close(CLOSE_FORBIDDEN_ORIGIN, "origin not allowed")
        return None
    owner = (await resolve_caller(socket, services)).owner
    if owner is None:
        await socket.close(CLOSE_UNAUTHENTICATED, "log in or create a session first")
        return None
    try:
        return await services.sessions.get(session_id, owner)
    except SessionNotFound:
        await socket.close(CLOSE_NOT_FOUND, "session not found")
        return None


async def session_frame(services: Services, session: ChatSession) -> dict[str, Any]:
    messages, has_more = await services.journal.page(session.id, limit=RECENT_MESSAGES)
    return {
        "type": "session",
        "session": session_out(session, messages[-1] if messages else None),
        "messages": [m.as_dict() for m in messages],
        "has_more": has_more,
        "active_run": session.id in services.runs.active,
    }


async def write_frames(socket: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        frame = await outbox.get()
        if socket.application_state != WebSocketState.CONNECTED:
            return
        try:
            await socket.send_text(json.dumps(frame, ensure_ascii=False, default=str))
        except (WebSocketDisconnect, RuntimeError):
            return  # the reader notices the disconnect and cleans up


async def read_frames(
    socket: WebSocket,
    services: Services,
    session: ChatSession,
    outbox: asyncio.Queue[dict[str, Any]],
) -> None:
    limit = services.settings.max_frame_bytes
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            outbox.put_nowait(error_frame("invalid_frame", "send JSON text frames"))
        elif len(text.encode()) > limit:
            outbox.put_nowait(
                error_frame("frame_too_large", f"frames are limited to {limit} bytes")
            )
        elif not await handle_frame(socket, services, session, outbox, text):
            return


async def handle_frame(
    socket: WebSocket,
    services: Services,
    session: ChatSession,
    outbox: asyncio.Queue[dict[str, Any]],
    text: str,
) -> bool:
    """Act on one client frame; False when the socket must close."""
    try:
        frame = ClientFrame.validate_json(text)
    except ValidationError as exc:
        outbox.put_nowait(error_frame("invalid_frame", describe(exc)))
        return True
    if isinstance(frame, PingFrame):
        outbox.put_nowait({"type": "pong"})
    elif isinstance(frame, CancelFrame):
        await services.runs.cancel(session.id)
    elif isinstance(frame, ResumeFrame):
        await replay(services, session.id, frame.after_seq, outbox)
    else:
        return await submit_query(socket, services, session, outbox, frame)
    return True


async def submit_query(
    socket: WebSocket,
    services: Services,
    session: ChatSession,
    outbox: asyncio.Queue[dict[str, Any]],
    frame: QueryFrame,
) -> bool:
    try:
        check_query(frame.content, services.settings.max_message_chars)
        await rate_limits_of(socket).turn(client_ip(socket), anonymous=session.user_id is None)
        current = await services.sessions.get(session.id)  # it may be gone by now
        for reply in await services.runs.submit(
            current, {"id": frame.id, "content": frame.content}
        ):
            outbox.put_nowait(reply)
    except SessionNotFound:
        outbox.put_nowait(error_frame("not_found", "session not found"))
        await asyncio.sleep(0)  # let the writer send it before the close
        await socket.close(CLOSE_NOT_FOUND, "session not found")
        return False
    except ThreadlineError as exc:
        outbox.put_nowait({**error_frame(exc.code, str(exc)), "id": frame.id})
    return True


async def replay(
    services: Services, session_id: str, after_seq: int, outbox: asyncio.Queue[dict[str, Any]]
) -> None:
    """Every journaled message after `after_seq`, then a `resumed` marker.

    Whether a run is active is read before the journal: a run that ends in
    between has its answer in the pages read; one still running delivers it
    live to this (already subscribed) socket.
    """
    active = session_id in services.runs.active
    last_seq = after_seq
    while True:
        page, more = await services.journal.page(session_id, after_seq=last_seq, limit=200)
        for message in page:
            outbox.put_nowait({"type": "message", "message": message.as_dict(), "replayed": True})
        if page:
            last_seq = page[-1].seq
        if not more:
            break
    outbox.put_nowait(
        {
            "type": "resumed",
            "after_seq": after_seq,
            "last_seq": last_seq,
            "active_run": active,
        }
    )


def describe(exc: ValidationError) -> str:
    """A short, safe description of what is wrong with a frame."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(problems)
