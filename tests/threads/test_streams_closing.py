"""An SSE stream of the Agent Server API (app/routes/agent_stream.py) lets go of
what it holds however the response ends: also for a client gone before its
body began, whose generator never runs (nor its `finally`). Driven at the ASGI
level, with a client that is gone: a `send` that fails, or one that never
finishes before the disconnect cancels it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from app.routes.agent_stream import stream_response, thread_stream_response
from memory.sessions import Owner
from threads.events import OutboxLimits
from threads.runtime import Runtime


async def receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def closed(message: dict[str, Any]) -> None:
    raise OSError("the client closed the connection")


async def stuck(message: dict[str, Any]) -> None:
    await asyncio.Event().wait()  # until the disconnect cancels the response


async def left_before_the_body(response: Response, spec_version: str) -> None:
    """The response, sent to a client that is gone: with ASGI spec 2.4 its
    sending fails (ClientDisconnect); before it (uvicorn's 2.3), the
    disconnect cancels the sending of its headers."""
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": spec_version}}
    if spec_version == "2.4":
        with pytest.raises(ClientDisconnect):
            await response(scope, receive, closed)
    else:
        await response(scope, receive, stuck)


async def allowed() -> bool:
    return True


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_thread_stream_left_before_its_body_stops_watching(
    runtime: Runtime, spec_version: str
) -> None:
    session = await runtime.deps.sessions.create(Owner(anon_token_hash=uuid.uuid4().hex * 2))
    limits = OutboxLimits(frames=100, bytes=100_000)
    response = thread_stream_response(runtime.threads, session, {"lifecycle"}, limits, allowed)
    assert session.id in runtime.threads.events.subscribers  # watching before the headers
    await left_before_the_body(response, spec_version)
    assert session.id not in runtime.threads.events.subscribers


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_run_stream_left_before_its_body_says_so_once(
    runtime: Runtime, spec_version: str
) -> None:
    session = await runtime.deps.sessions.create(Owner(anon_token_hash=uuid.uuid4().hex * 2))
    ended: list[bool] = []
    response = stream_response(
        runtime.agent_runs,
        runtime.threads,
        session,
        str(uuid.uuid4()),
        {"values"},
        (0, 0),
        at_end=ended.append,
    )
    await left_before_the_body(response, spec_version)
    assert ended == [False]  # a stateless run's thread is discarded, its run cancelled
