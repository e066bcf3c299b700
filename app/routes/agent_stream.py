"""A run's frames as the Agent Server API's server-sent events (docs/agent-server-api.md):
the stream modes, event ids that `Last-Event-ID` resumes after, heartbeats on a
quiet stream; the runs themselves are app/routes/agent_runs.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, Literal, TypeVar

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from app.routes.agent_api import journal_messages_json
from graph.nodes import answer_id_for
from memory.futures import retrieved
from memory.models import ChatSession
from threads.agent_runs import AgentRuns
from threads.events import ACCESS_CHANGED, OutboxLimits, Watcher
from threads.operations import Threads
from threads.outbox import Event

T = TypeVar("T")


def run_links(thread_id: str, run_id: str) -> dict[str, str]:
    return {
        "Location": f"/threads/{thread_id}/runs/{run_id}/stream",
        "Content-Location": f"/threads/{thread_id}/runs/{run_id}",
    }


ALL_EVENTS = 1 << 30  # "all of the frame's events" in a parsed Last-Event-ID


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    return sse_json(event, json.dumps(data, separators=(",", ":")), event_id)


def sse_json(event: str, data: str, event_id: str | None = None) -> str:
    """An event whose data is JSON text already. A line break in it can only be
    whitespace between tokens (JSON escapes those inside strings): each line
    goes out as a `data:` line of its own, which the client joins with one."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head + "data: " + data.replace("\n", "\ndata: ") + "\n\n"


def last_seen(last_event_id: str | None) -> tuple[int, int]:
    """A `Last-Event-ID` as (frame number, its last event seen): `n` is all of
    frame n, `n.i` its events up to i (the ids `stream_response` gives)."""
    if not last_event_id:
        return 0, ALL_EVENTS
    frame, _, event = last_event_id.strip().partition(".")
    try:
        n, i = int(frame), int(event) if event else ALL_EVENTS
    except ValueError:
        raise HTTPException(422, "Last-Event-ID is not an event id of this stream") from None
    if n < 0 or i < 0 or n >= 2**31:
        raise HTTPException(422, "Last-Event-ID is not an event id of this stream")
    return n, i


HEARTBEAT_S = 15.0


async def with_heartbeats(
    items: AsyncGenerator[T, None], every: float = HEARTBEAT_S
) -> AsyncIterator[T | None]:
    """`items`, with None whenever `every` seconds pass without one (the item
    being awaited is never cancelled by it)."""
    async with aclosing(items):
        step: asyncio.Task[T] | None = None
        try:
            while True:
                if step is None:
                    step = asyncio.ensure_future(anext(items))
                done, _ = await asyncio.wait({step}, timeout=every)
                if not done:
                    yield None
                    continue
                try:
                    item = step.result()
                except StopAsyncIteration:
                    return
                step = None
                yield item
        finally:
            if step is not None and not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step


class EventStream(StreamingResponse):
    """SSE whose `on_close` runs once the response is over, however it ended:
    also when the client was gone before its body began, when the body's
    generator never runs (nor its `finally`)."""

    def __init__(
        self, body: AsyncIterator[str], on_close: Callable[[], None], headers: dict[str, str]
    ) -> None:
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def stream_response(
    runs: AgentRuns,
    threads: Threads,
    session: ChatSession,
    run_id: str,
    modes: set[str],
    seen: tuple[int, int],
    *,
    at_end: Callable[[bool], None] | None = None,
) -> StreamingResponse:
    """The run's events after `seen`, as SSE: `metadata`, the frames' events (each
    with its id), then `values` (for that mode) and `end`. `at_end` is called
    when the stream ends (True), or the client leaves it first (False)."""
    after, seen_event = seen
    start = after if seen_event >= ALL_EVENTS else after - 1
    ended, closed = False, False

    def close() -> None:  # at the generator's end, or the response's (whichever is first)
        nonlocal closed
        if not closed and at_end is not None:
            at_end(ended)
        closed = True

    async def events() -> AsyncIterator[str]:
        # The closing `values` is read as soon as the answer is journaled (its
        # `message` frame), beside the run's last steps, not after them.
        nonlocal ended
        values: asyncio.Future[str] | None = None
        try:
            yield sse("metadata", {"run_id": run_id, "attempt": 1})
            async for item in with_heartbeats(runs.follow(session, run_id, max(start, 0))):
                if item is None:
                    yield ": heartbeat\n\n"
                    continue
                n, frame = item
                if "values" in modes and values is None and frame.get("type") == "message":
                    values = asyncio.ensure_future(journal_messages_json(threads, session.id))
                found = translate(frame, session.id, modes, run_id)
                for i, (event, data) in enumerate(found):
                    if n == after and i <= seen_event:
                        continue  # seen before the client came back
                    yield sse(event, data, f"{n}" if len(found) == 1 else f"{n}.{i}")
            if "values" in modes:
                messages = await (values or journal_messages_json(threads, session.id))
                yield sse_json("values", '{"messages":' + messages + "}")
            yield sse("end", None)
            ended = True
        finally:
            if values is not None and not values.done():
                values.cancel()  # the client went away first
                values.add_done_callback(retrieved)
            close()

    headers = {**run_links(session.id, run_id), "Cache-Control": "no-store"}
    return EventStream(events(), close, headers)


def translate(
    frame: dict[str, Any], thread_id: str, modes: set[str], run_id: str
) -> list[tuple[str, Any]]:
    """One Threadline frame as the API's stream events, for the modes asked (the
    run's id is its question's id)."""
    kind = frame.get("type")
    out: list[tuple[str, Any]] = []
    meta = {"run_id": run_id, "thread_id": thread_id, "langgraph_node": frame.get("node")}
    if kind == "attempt":  # the run asked again after its process went away
        return [("metadata", {"run_id": run_id, "attempt": frame["attempt"]})]
    if kind == "token" and "messages-tuple" in modes:
        chunk = {
            "type": "AIMessageChunk",
            "id": answer_id_for(run_id),
            "content": frame["content"],
        }
        out.append(("messages", [chunk, {**meta, "langgraph_node": "execution"}]))
    if kind == "message" and "messages-tuple" in modes:
        message = frame["message"]
        row_like = {"type": "ai", "id": message["id"], "content": message["content"]}
        out.append(("messages", [row_like, {**meta, "langgraph_node": "response"}]))
    if kind == "progress" and frame.get("status") == "finished" and "updates" in modes:
        detail = {k: v for k, v in frame.items() if k not in ("type", "status", "node", "run_id")}
        out.append(("updates", {frame["node"]: detail}))
    if "custom" in modes and kind != "done":
        out.append(("custom", {k: v for k, v in frame.items() if k != "run_id"}))
    if kind == "error":
        out.append(("error", {"error": frame.get("code"), "message": frame.get("message")}))
    return out


# -- a thread's stream: every run on it, as it happens ------------------------------

ThreadStreamMode = Literal["run_modes", "lifecycle", "state_update"]
RUN_MODES = {"messages-tuple", "updates"}  # what `run_modes` sends of each run's frames


def thread_stream_response(
    threads: Threads,
    session: ChatSession,
    modes: set[str],
    limits: OutboxLimits,
    still_allowed: Callable[[], Awaitable[bool]],
) -> StreamingResponse:
    """The thread's runs as they happen, whoever asked them (the browser, the
    SDK, another process), as SSE until the client leaves: per run `metadata`
    at its start and `run_done` at its end (`lifecycle`), its `messages` and
    `updates` events between them (`run_modes`, which also sends the rest),
    and the thread's `values` at its end (`run_modes`, `state_update`). A run
    already answering when the client came is joined where it is. Live only:
    a `Last-Event-ID` is not resumed from (a run's own stream is)."""
    runs_of: dict[str, str] = {}  # a turn's frames' run_id -> the run's id (its question's)
    over: set[str] = set()
    stopped: set[str] = set()  # runs whose answer was journaled as cancelled

    async def frames(watcher: Watcher) -> AsyncGenerator[Event, None]:
        while not watcher.queue.overflowed.is_set():
            event = (await watcher.queue.get_frame()).event
            if event is ACCESS_CHANGED:
                if not await still_allowed():
                    return  # deleted, or no longer the caller's
                continue
            yield event

    async def run_of(frame: Event) -> str | None:
        turn = str(frame.get("run_id"))
        if frame.get("type") == "ack":
            runs_of[turn] = str(frame["id"])
        elif turn not in runs_of:  # begun before the client came: the last question's
            last = await threads.deps.journal.tail(session.id, 1)
            if not last or last[-1].role != "user":
                return None
            runs_of[turn] = last[-1].id
        return runs_of[turn]

    def events_of(frame: Event, run_id: str) -> list[tuple[str, Any]]:
        kind, found = frame.get("type"), []
        if kind == "ack" and modes & {"run_modes", "lifecycle"}:
            found.append(("metadata", {"run_id": run_id, "thread_id": session.id}))
        if "run_modes" in modes:
            found += translate(frame, session.id, RUN_MODES, run_id)
        return found

    # Watching before the response starts: a client that has the headers misses
    # no run asked after them.
    watcher = threads.watch(session, limits)

    async def events() -> AsyncIterator[str]:
        try:
            async for frame in with_heartbeats(frames(watcher)):
                if frame is None:
                    yield ": heartbeat\n\n"
                    continue
                run_id = await run_of(frame)
                if run_id is None or run_id in over:
                    continue
                for event, data in events_of(frame, run_id):
                    yield sse(event, data)
                if frame.get("type") == "message" and frame["message"].get("cancelled"):
                    stopped.add(run_id)
                if frame.get("type") in ("done", "error"):
                    over.add(run_id)
                    if modes & {"run_modes", "state_update"}:
                        messages = await journal_messages_json(threads, session.id)
                        yield sse_json("values", '{"messages":' + messages + "}")
                    if modes & {"run_modes", "lifecycle"}:
                        status = "error" if frame.get("type") == "error" else "success"
                        status = "interrupted" if run_id in stopped else status
                        yield sse("run_done", {"run_id": run_id, "status": status})
        finally:
            threads.unwatch(watcher)

    return EventStream(events(), lambda: threads.unwatch(watcher), {"Cache-Control": "no-store"})
