"""The Agent Server API's runs (docs/agent-server-api.md): streamed, waited for,
in the background, joined, listed and cancelled, on the threads of
app/routes/agent_api.py. A run is named by the id of the question it answers, so
its status is read from the journal, in any process; its frames go out as
server-sent events through app/routes/agent_stream.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import aclosing
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.deps import AgentRunsDep, SettingsDep, ThreadsDep, credentials_of
from app.routes.agent_api import (
    ASSISTANT_ID,
    ASSISTANT_UUID,
    ThreadDep,
    iso,
    journal_messages,
    known_assistant,
    seq_of,
)
from app.routes.agent_stream import (
    ALL_EVENTS,
    ThreadStreamMode,
    last_seen,
    run_links,
    stream_response,
    thread_stream_response,
)
from graph.nodes import answer_id_for
from memory.agent_runs import AgentRun
from memory.errors import SessionNotFound, ThreadlineError
from memory.journal import check_metadata
from memory.models import ChatMessage, ChatSession
from threads.access import NotSignedIn
from threads.agent_runs import AgentRuns
from threads.events import OutboxLimits
from threads.operations import Threads, last_turn

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


def mode_set(stream_mode: StreamMode | list[StreamMode]) -> set[str]:
    modes = stream_mode if isinstance(stream_mode, list) else [stream_mode]
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
    newest = await threads.deps.journal.tail(session.id, 1)
    if (newest[-1].seq if newest else 0) == seq and has_input(body):
        return None  # the latest state: an ordinary run
    last = await last_turn(threads.deps.journal, session.id)
    if last is not None:
        if has_input(body) and seq == last.before:
            return last.question.id, query_of(body)
        if not has_input(body) and seq in (last.before, last.question.seq):
            return last.question.id, None
    raise HTTPException(
        422,
        "only the last question can be edited or its answer regenerated; "
        "other runs start from the thread's latest state",
    )


async def start_run(
    runs: AgentRuns, threads: Threads, session: ChatSession, body: RunCreate
) -> tuple[str, int]:
    """Ask the run (docs/agent-server-api.md: double texting) on `session`;
    returns its id and the number its frames follow."""
    known_assistant(body.assistant_id)
    rework = await rework_of(threads, session, body)
    if rework is None:
        query: dict[str, Any] = query_of(body)
    else:
        question_id, new = rework
        query = new or {"id": question_id}  # a regenerated answer answers the same question
    if "content" in query:  # a new question: journaled with what its run asked
        query["run"] = {
            "metadata": check_metadata(body.metadata or {}),
            "multitask_strategy": body.multitask_strategy,
        }
    try:
        run, after = await runs.ask(
            session,
            query,  # type: ignore[arg-type]
            body.multitask_strategy,
            rework=rework,  # type: ignore[arg-type]
        )
    except ThreadlineError as exc:
        if exc.code == "busy":
            raise HTTPException(409, "the thread is busy with another run") from exc
        raise
    # A run is named by the question it answers: its status can be read from the
    # journal in any process (see `run_status`).
    return run.id, after


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    body: RunCreate,
    session: ThreadDep,
    threads: ThreadsDep,
    runs: AgentRunsDep,
) -> StreamingResponse:
    run_id, after = await start_run(runs, threads, session, body)
    modes, seen = mode_set(body.stream_mode), (after, ALL_EVENTS)
    at_end = when_left(runs, session, run_id, body)
    return stream_response(runs, threads, session, run_id, modes, seen, at_end=at_end)


def when_left(
    runs: AgentRuns, session: ChatSession, run_id: str, body: RunCreate
) -> Callable[[bool], None]:
    """What a run's stream does at its end: with `on_disconnect: "cancel"`, a
    client that leaves before the end stops the run (its partial answer is
    journaled as cancelled); with `"continue"` (the default) the run goes on."""

    def at_end(ended: bool) -> None:
        if not ended and body.on_disconnect == "cancel":
            runs.cancel_soon(session, run_id)

    return at_end


@router.get("/threads/{thread_id}/stream")
async def stream_thread(
    request: Request,
    session: ThreadDep,
    threads: ThreadsDep,
    settings: SettingsDep,
    stream_mode: Annotated[list[ThreadStreamMode] | None, Query()] = None,
) -> StreamingResponse:
    """Every run on the thread as it happens (`threads.join_stream`), until the
    client leaves; see `thread_stream_response`."""
    credentials = credentials_of(request)

    async def still_allowed() -> bool:
        try:
            await threads.authorize(credentials, session.id, user_only=True)
        except (NotSignedIn, SessionNotFound):
            return False
        return True

    limits = OutboxLimits(frames=settings.outbox_frames, bytes=settings.outbox_bytes)
    modes = set(stream_mode or ["run_modes"])
    return thread_stream_response(threads, session, modes, limits, still_allowed)


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_run_stream(
    run_id: str,
    session: ThreadDep,
    threads: ThreadsDep,
    runs: AgentRunsDep,
    stream_mode: Annotated[list[StreamMode] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Follow a run's stream from its start, or after the `Last-Event-ID` the
    client saw (in any process, also after a restart: the run's frames are
    logged while it runs)."""
    seen = last_seen(last_event_id)
    await run_status(threads, runs, session, run_id)  # 404 for no such run
    modes = mode_set(stream_mode or "values")
    return stream_response(runs, threads, session, run_id, modes, seen)


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(
    body: RunCreate, session: ThreadDep, threads: ThreadsDep, runs: AgentRunsDep
) -> dict[str, Any]:
    """Run a turn and answer with the thread's values once it is done."""
    run_id, after = await start_run(runs, threads, session, body)
    return await values_when_over(runs, threads, session, run_id, after)


async def values_when_over(
    runs: AgentRuns, threads: Threads, session: ChatSession, run_id: str, after: int
) -> dict[str, Any]:
    """The thread's values once the run is over, with its error if it failed."""
    error: dict[str, Any] | None = None
    async for _, frame in runs.follow(session, run_id, after):
        if frame["type"] == "error":
            error = frame
    now = await threads.deps.sessions.get(session.id)
    values: dict[str, Any] = {"messages": await journal_messages(threads, now)}
    if error is not None:
        values["__error__"] = {"error": error.get("code"), "message": error.get("message")}
    return values


# -- background runs ---------------------------------------------------------------

RUNS_SCANNED = 1000  # messages read (newest first) to list a thread's runs
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]


def status_of(answer: ChatMessage | None, running: bool) -> RunStatus:
    """A run's status from its answer (or its absence) and whether it still runs."""
    if answer is None:
        return "running" if running else "error"
    if answer.metadata_.get("cancelled"):
        return "interrupted"
    return "error" if answer.has_error else "success"


def waiting_status(run: AgentRun, running: bool) -> RunStatus | None:
    """The status of a run whose question is not (or not yet) in the journal."""
    if run.state == "queued" or (run.state == "started" and not running):
        return "pending"  # waiting for the thread, or to be asked again after a restart
    if run.state == "started":
        return "running"
    if run.state == "cancelled":
        return "interrupted"
    return None  # ended with nothing journaled: refused, or rolled back


def asked_with(question: ChatMessage | None, queued: AgentRun | None) -> dict[str, Any]:
    """What the run was created with (`metadata`, `multitask_strategy`): kept with
    its question (graph.turn.journal_question), or in its row while it is
    queued. A question asked over the WebSocket has neither."""
    if question is not None:
        asked = question.metadata_.get("run")
    else:
        asked = queued.query.get("run") if queued is not None else None
    return asked if isinstance(asked, dict) else {}


async def run_status(
    threads: Threads, runs: AgentRuns, session: ChatSession, run_id: str
) -> tuple[RunStatus, Any, dict[str, Any]]:
    """What became of the run `run_id` (its question's id): `pending` (queued),
    `running`, `success` (answered), `interrupted` (stopped: its partial answer
    is journaled; or taken out of the queue) or `error` (failed or cut off;
    asking it again retries), read from the journal and the run's row. 404 for
    no such run here (also a run rolled back: it left nothing). With the status,
    the journaled message it was last seen by and what it was asked with."""
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise HTTPException(404, "run not found") from None
    # Read in the order a turn ends in reverse: whether the thread runs, then
    # its last message, then the run's question and answer. A turn journals its
    # answer before it stops running, so a turn that ends between two reads is
    # seen running with its question last, or with its answer found. (Read the
    # other way round, a run just over looked cut off: `pending`.)
    running = await threads.is_running(session.id)
    last = await threads.deps.journal.tail(session.id, 1)
    found = await threads.deps.journal.find(session.id, [run_id, answer_id_for(run_id)])
    question, answer = found.get(run_id), found.get(answer_id_for(run_id))
    if question is not None and (question.session_id != session.id or question.role != "user"):
        raise HTTPException(404, "run not found")
    if answer is not None:
        return status_of(answer, False), answer, asked_with(question, None)
    row = await runs.store.get(session.id, run_id)
    if question is None:
        status = waiting_status(row, running) if row is not None else None
        if status is None:
            raise HTTPException(404, "run not found")
        return status, None, asked_with(None, row)
    latest = bool(last) and last[-1].id == run_id
    if row is not None and row.state in ("queued", "started") and not (latest and running):
        # cut off; asked again as soon as the thread is free
        return "pending", question, asked_with(question, row)
    return status_of(None, latest and running), question, asked_with(question, row)


def run_dict(
    session: ChatSession, run_id: str, status: str, row: Any, asked: dict[str, Any]
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "thread_id": session.id,
        "assistant_id": ASSISTANT_UUID,
        "created_at": iso(row.created_at if row is not None else None),
        "updated_at": iso(row.created_at if row is not None else None),
        "status": status,
        "metadata": asked.get("metadata", {}),
        "multitask_strategy": asked.get("multitask_strategy", "reject"),
        "kwargs": {},
    }


@router.post("/threads/{thread_id}/runs")
async def create_run(
    body: RunCreate, session: ThreadDep, threads: ThreadsDep, runs: AgentRunsDep
) -> JSONResponse:
    """Start a run in the background: answered once its question is journaled
    (status `running`, or `success` for a question answered before), or once it
    is queued (`pending`, with `enqueue` while the thread is busy)."""
    run_id, after = await start_run(runs, threads, session, body)
    run = await run_once_started(runs, threads, session, run_id, after)
    return JSONResponse(run, headers=run_links(session.id, run_id))


async def run_once_started(
    runs: AgentRuns, threads: Threads, session: ChatSession, run_id: str, after: int
) -> dict[str, Any]:
    """A run started in the background, as `runs.create` answers it: once its
    question is journaled (or refused), or queued."""
    row = await runs.store.get(session.id, run_id)
    if row is not None and row.state != "queued":
        async with aclosing(runs.follow(session, run_id, after)) as frames:
            async for _, frame in frames:
                if frame["type"] in ("ack", "error", "done"):
                    break
    status, journaled, asked = await run_status(threads, runs, session, run_id)
    return run_dict(session, run_id, status, journaled, asked)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    session: ThreadDep,
    threads: ThreadsDep,
    runs: AgentRunsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first: the queued ones, then one per question
    asked (from the socket, the SDK or an import alike), with its status read
    from the journal."""
    # A question and its answer per run: twice as many messages as runs wanted,
    # and with a status filter the thread's last RUNS_SCANNED messages.
    wanted = RUNS_SCANNED if status else min(2 * (offset + limit) + 1, RUNS_SCANNED)
    rows = await threads.deps.journal.tail(session.id, wanted)
    by_id = {row.id: row for row in rows}
    running = await threads.is_running(session.id)
    last_id = rows[-1].id if rows else None
    found: list[dict[str, Any]] = []
    for waiting in reversed(await runs.store.open_runs(session.id)):
        if waiting.id not in by_id:
            state = waiting_status(waiting, running and waiting.id != last_id)
            if state is not None and status in (None, state):
                asked = asked_with(None, waiting) or {"multitask_strategy": "enqueue"}
                found.append(run_dict(session, waiting.id, state, None, asked))
    for row in reversed(rows):
        if row.role != "user":
            continue
        answer = by_id.get(answer_id_for(row.id))
        state = status_of(answer, running and row.id == last_id)
        if status is None or state == status:
            found.append(run_dict(session, row.id, state, answer or row, asked_with(row, None)))
    return found[offset : offset + limit]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    run_id: str, session: ThreadDep, threads: ThreadsDep, runs: AgentRunsDep
) -> dict[str, Any]:
    return run_dict(session, run_id, *await run_status(threads, runs, session, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    run_id: str, session: ThreadDep, threads: ThreadsDep, runs: AgentRunsDep
) -> dict[str, Any]:
    """Wait for the run to end; then the thread's values, as `runs/wait` answers."""
    watcher = threads.watch(session)  # before reading the status: no end goes unheard
    try:
        status, *_ = await run_status(threads, runs, session, run_id)
        if status in ("pending", "running"):
            await runs.wait_over(session, run_id)
        status, *_ = await run_status(threads, runs, session, run_id)
        while status == "running":  # a turn asked from the socket: no row, no log
            frame = await watcher.queue.get()
            if frame.get("type") in ("done", "error"):
                status, *_ = await run_status(threads, runs, session, run_id)
    finally:
        threads.unwatch(watcher)
    now = await threads.deps.sessions.get(session.id)
    return {"messages": await journal_messages(threads, now)}


CancelAction = Literal["interrupt", "rollback"]


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    run_id: str,
    session: ThreadDep,
    threads: ThreadsDep,
    runs: AgentRunsDep,
    wait: bool = False,
    action: CancelAction = "interrupt",
) -> dict[str, Any]:
    """Take a queued run out of the queue, or stop the run while it runs: its
    partial answer is journaled as cancelled, or with `action=rollback` taken
    out of the journal with its question (the run is then no more: 404). A run
    that is over is left as it is (409). With `wait`, answered once it stopped."""
    status, *_ = await run_status(threads, runs, session, run_id)  # 404 for no such run
    if status not in ("pending", "running") or not await runs.cancel(
        session, run_id, rollback=action == "rollback", wait=wait
    ):
        raise HTTPException(409, f"the run is not pending or running (it is {status})")
    return {"run_id": run_id, "status": "interrupted"}
