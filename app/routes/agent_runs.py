"""The Agent Server API's runs (docs/agent-server-api.md): streamed, waited for,
in the background, joined, listed and cancelled, on the threads of
app/routes/agent_api.py. A run is named by the id of the question it answers, so
its status is read from the journal, in any process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.deps import ThreadsDep, UserDep
from app.routes.agent_api import (
    ASSISTANT_ID,
    ASSISTANT_UUID,
    iso,
    journal_messages,
    known_assistant,
    owned,
    seq_of,
)
from graph.nodes import answer_id_for
from memory.errors import ThreadlineError
from memory.models import ChatMessage, ChatSession
from threads.operations import Threads

router = APIRouter(tags=["agent server api"])
StreamMode = Literal["values", "messages", "messages-tuple", "updates", "custom", "events", "debug"]


# -- runs ------------------------------------------------------------------------


class RunInput(BaseModel):
    messages: list[dict[str, Any]] | dict[str, Any] | str = Field(default_factory=list)


class RunCreate(BaseModel):
    assistant_id: str = ASSISTANT_ID
    input: RunInput | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "reject"
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    stream_subgraphs: bool = False
    on_disconnect: Literal["cancel", "continue"] = "continue"
    # Start from an earlier state: regenerate the last answer, or edit the last
    # question (see `rework_of`); the latest state is where every run starts.
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None


def query_of(body: RunCreate) -> dict[str, str]:
    """The turn's question: the last human message of the input."""
    messages = body.input.messages if body.input is not None else []
    if isinstance(messages, str):
        messages = [{"type": "human", "content": messages}]
    elif isinstance(messages, dict):
        messages = [messages]
    humans = [m for m in messages if m.get("type", m.get("role")) in ("human", "user")]
    if not humans:
        raise HTTPException(422, "input.messages holds no human message to answer")
    content = humans[-1].get("content")
    if isinstance(content, list):  # content blocks: their text
        content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
    if not isinstance(content, str):
        raise HTTPException(422, "the message's content must be text")
    given = humans[-1].get("id")
    try:
        query_id = str(uuid.UUID(str(given))) if given else str(uuid.uuid4())
    except ValueError:
        query_id = str(uuid.uuid4())
    return {"id": query_id, "content": content}


def modes_of(body: RunCreate) -> set[str]:
    modes = body.stream_mode if isinstance(body.stream_mode, list) else [body.stream_mode]
    return {"messages-tuple" if m == "messages" else m for m in modes}


def has_input(body: RunCreate) -> bool:
    return body.input is not None and bool(body.input.messages)


async def rework_of(
    threads: Threads, session: ChatSession, body: RunCreate
) -> tuple[str, dict[str, str] | None] | None:
    """What a run from an earlier checkpoint redoes, as (question id, new query or
    None); None for a run from the latest state.

    Checkpoints are journal positions (`seq-<n>`, the seq of the state's last
    message). From the state before the last question, with a human message as
    input, the question is edited; from the state before it, or holding it, with
    no input, its answer is regenerated. Any other earlier state: 422.
    """
    wanted = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    if wanted is None:
        return None
    seq = seq_of(wanted)
    if seq is None:
        raise HTTPException(422, f"no checkpoint {wanted!r} in this thread")
    rows = await threads.deps.journal.tail(session.id, 3)
    if (rows[-1].seq if rows else 0) == seq and has_input(body):
        return None  # the latest state: an ordinary run
    users = [i for i, row in enumerate(rows) if row.role == "user"]
    last = users[-1] if users else None
    if last is not None and last >= len(rows) - 2:
        question = rows[last]
        before = rows[last - 1].seq if last > 0 else 0  # the state before the question
        if has_input(body) and seq == before:
            return question.id, query_of(body)
        if not has_input(body) and seq in (before, question.seq):
            return question.id, None
    raise HTTPException(
        422,
        "only the last question can be edited or its answer regenerated; "
        "other runs start from the thread's latest state",
    )


class RunFeed:
    """One run's frames from the thread's watcher, until it is done."""

    def __init__(
        self,
        threads: Threads,
        session: ChatSession,
        query: dict[str, str],
        rework: tuple[str, dict[str, str] | None] | None = None,
    ) -> None:
        self.threads, self.session, self.query, self.rework = threads, session, query, rework
        self.watcher = threads.watch(session)
        self.run_id: str | None = None

    async def start(self) -> list[dict[str, Any]]:
        try:
            if self.rework is None:
                return await self.threads.ask(self.session, self.query)  # type: ignore[arg-type]
            question_id, new = self.rework
            return await self.threads.redo_in(self.session, question_id, new)  # type: ignore[arg-type]
        except BaseException:
            self.threads.unwatch(self.watcher)
            raise

    async def frames(self, replayed: list[dict[str, Any]]) -> AsyncGenerator[dict[str, Any], None]:
        try:
            for frame in replayed:
                yield frame
            if replayed:
                return
            while True:
                frame = await self.watcher.queue.get()
                if self.run_id is None and frame.get("type") == "ack":
                    if frame.get("id") != self.query["id"]:
                        continue
                    self.run_id = frame.get("run_id")
                if self.run_id is None or frame.get("run_id") not in (None, self.run_id):
                    continue
                yield frame
                if frame["type"] in ("done", "error"):
                    return
        finally:
            self.threads.unwatch(self.watcher)


def sse(event: str, data: Any, event_id: int) -> str:
    return f"event: {event}\nid: {event_id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def start_run(
    threads: Threads, thread_id: str, body: RunCreate, user: Any
) -> tuple[RunFeed, list[dict[str, Any]], str]:
    known_assistant(body.assistant_id)
    if body.multitask_strategy != "reject":
        raise HTTPException(
            422,
            f"multitask_strategy {body.multitask_strategy!r} is not supported yet: use 'reject'",
        )
    session = await owned(threads, thread_id, user)
    rework = await rework_of(threads, session, body)
    if rework is None:
        query = query_of(body)
    else:
        question_id, new = rework
        query = new or {"id": question_id}  # a regenerated answer answers the same question
    feed = RunFeed(threads, session, query, rework)
    try:
        replayed = await feed.start()
    except ThreadlineError as exc:
        if exc.code == "busy":
            raise HTTPException(409, "the thread is busy with another run") from exc
        raise
    # A run is named by the question it answers: its status can be read from the
    # journal in any process, with nothing else stored (see `run_status`).
    return feed, replayed, query["id"]


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    thread_id: str, body: RunCreate, request: Request, user: UserDep, threads: ThreadsDep
) -> StreamingResponse:
    feed, replayed, run_id = await start_run(threads, thread_id, body, user)
    modes = modes_of(body)

    async def events() -> AsyncIterator[str]:
        n = 0

        def next_id() -> int:
            nonlocal n
            n += 1
            return n

        yield sse("metadata", {"run_id": run_id, "attempt": 1}, next_id())
        async for frame in feed.frames(replayed):
            for event, data in translate(frame, feed, modes, run_id):
                yield sse(event, data, next_id())
        if "values" in modes:
            session = await threads.deps.sessions.get(feed.session.id)
            values = {"messages": await journal_messages(threads, session)}
            yield sse("values", values, next_id())
        yield sse("end", None, next_id())

    headers = {
        "Location": f"/threads/{thread_id}/runs/{run_id}/stream",
        "Content-Location": f"/threads/{thread_id}/runs/{run_id}",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def translate(
    frame: dict[str, Any], feed: RunFeed, modes: set[str], run_id: str
) -> list[tuple[str, Any]]:
    """One Threadline frame as the API's stream events, for the modes asked."""
    kind = frame.get("type")
    out: list[tuple[str, Any]] = []
    meta = {"run_id": run_id, "thread_id": feed.session.id, "langgraph_node": frame.get("node")}
    if kind == "token" and "messages-tuple" in modes:
        chunk = {
            "type": "AIMessageChunk",
            "id": answer_id_for(feed.query["id"]),
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
    if "custom" in modes and kind not in ("done",):
        out.append(("custom", {k: v for k, v in frame.items() if k != "run_id"}))
    if kind == "error":
        out.append(("error", {"error": frame.get("code"), "message": frame.get("message")}))
    return out


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(
    thread_id: str, body: RunCreate, user: UserDep, threads: ThreadsDep
) -> dict[str, Any]:
    """Run a turn and answer with the thread's values once it is done."""
    feed, replayed, _ = await start_run(threads, thread_id, body, user)
    error: dict[str, Any] | None = None
    async for frame in feed.frames(replayed):
        if frame["type"] == "error":
            error = frame
    session = await threads.deps.sessions.get(feed.session.id)
    values: dict[str, Any] = {"messages": await journal_messages(threads, session)}
    if error is not None:
        values["__error__"] = {"error": error.get("code"), "message": error.get("message")}
    return values


# -- background runs ---------------------------------------------------------------

RUNS_SCANNED = 1000  # messages read (newest first) to list a thread's runs


def status_of(answer: ChatMessage | None, running: bool) -> str:
    """A run's status from its answer (or its absence) and whether it still runs."""
    if answer is None:
        return "running" if running else "error"
    if answer.as_dict()["cancelled"]:
        return "interrupted"
    return "error" if answer.has_error else "success"


async def run_status(threads: Threads, session: ChatSession, run_id: str) -> tuple[str, Any]:
    """What became of the run that asked `run_id` (its question's id), read from the
    journal: `success` (answered), `interrupted` (stopped: its partial answer is
    journaled), `running` (the thread's turn is on its question), or `error`
    (failed or cut off; asking it again retries). 404 for no such run here."""
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise HTTPException(404, "run not found") from None
    found = await threads.deps.journal.find(session.id, [run_id, answer_id_for(run_id)])
    question, answer = found.get(run_id), found.get(answer_id_for(run_id))
    if question is None or question.session_id != session.id or question.role != "user":
        raise HTTPException(404, "run not found")
    if answer is not None:
        return status_of(answer, False), answer
    last = await threads.deps.journal.tail(session.id, 1)
    latest = bool(last) and last[-1].id == run_id
    return status_of(None, latest and await threads.is_running(session.id)), question


def run_dict(session: ChatSession, run_id: str, status: str, row: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "thread_id": session.id,
        "assistant_id": ASSISTANT_UUID,
        "created_at": iso(row.created_at if row is not None else None),
        "updated_at": iso(row.created_at if row is not None else None),
        "status": status,
        "metadata": {},
        "multitask_strategy": "reject",
        "kwargs": {},
    }


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str, body: RunCreate, user: UserDep, threads: ThreadsDep
) -> JSONResponse:
    """Start a run in the background; answered once its question is journaled
    (status `running`, or `success` for a question already answered)."""
    feed, replayed, run_id = await start_run(threads, thread_id, body, user)
    async with aclosing(feed.frames(replayed)) as frames:
        async for frame in frames:
            if frame["type"] in ("ack", "error", "done"):
                break
    status, row = await run_status(threads, feed.session, run_id)
    headers = {
        "Location": f"/threads/{thread_id}/runs/{run_id}/stream",
        "Content-Location": f"/threads/{thread_id}/runs/{run_id}",
    }
    return JSONResponse(run_dict(feed.session, run_id, status, row), headers=headers)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    user: UserDep,
    threads: ThreadsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    status: Literal["pending", "running", "error", "success", "timeout", "interrupted"]
    | None = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first: one per question asked (from the socket,
    the SDK or an import alike), with its status read from the journal."""
    session = await owned(threads, thread_id, user)
    # A question and its answer per run: twice as many messages as runs wanted,
    # and with a status filter the thread's last RUNS_SCANNED messages.
    wanted = RUNS_SCANNED if status else min(2 * (offset + limit) + 1, RUNS_SCANNED)
    rows = await threads.deps.journal.tail(session.id, wanted)
    by_id = {row.id: row for row in rows}
    running = await threads.is_running(session.id)
    last_id = rows[-1].id if rows else None
    runs = []
    for row in reversed(rows):
        if row.role != "user":
            continue
        answer = by_id.get(answer_id_for(row.id))
        found = status_of(answer, running and row.id == last_id)
        if status is None or found == status:
            runs.append(run_dict(session, row.id, found, answer or row))
    return runs[offset : offset + limit]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: str, run_id: str, user: UserDep, threads: ThreadsDep
) -> dict[str, Any]:
    session = await owned(threads, thread_id, user)
    status, row = await run_status(threads, session, run_id)
    return run_dict(session, run_id, status, row)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    thread_id: str, run_id: str, user: UserDep, threads: ThreadsDep
) -> dict[str, Any]:
    """Wait for the run to end; then the thread's values, as `runs/wait` answers."""
    session = await owned(threads, thread_id, user)
    watcher = threads.watch(session)  # before reading the status: no end goes unheard
    try:
        status, _ = await run_status(threads, session, run_id)
        while status == "running":
            frame = await watcher.queue.get()
            if frame.get("type") in ("done", "error"):
                status, _ = await run_status(threads, session, run_id)
    finally:
        threads.unwatch(watcher)
    session = await threads.deps.sessions.get(session.id)
    return {"messages": await journal_messages(threads, session)}


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    thread_id: str, run_id: str, user: UserDep, threads: ThreadsDep
) -> dict[str, Any]:
    """Stop the thread's running turn (its partial answer is journaled)."""
    session = await owned(threads, thread_id, user)
    await threads.cancel(session)
    return {"run_id": run_id, "status": "interrupted"}
