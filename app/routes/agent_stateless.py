"""Runs of the Agent Server API not asked on one thread (docs/agent-server-api.md):
stateless runs (`/runs/wait`, `/runs/stream`, `/runs` and `/runs/batch`, the
SDK's `runs.*(None, ...)`), and cancelling many runs at once (`/runs/cancel`).

A stateless run is an ordinary run on a thread made for it. With
`on_completion: "delete"` (the default) the thread is deleted once the run is
over (`AgentRuns.discard_when_over`), after what the run taught is saved: the
assistant remembers the user from it as from any thread; `"keep"` leaves it
among the user's threads. The run reads the user's memories like any other.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.deps import AgentRunsDep, ThreadsDep, UserDep
from app.routes.agent_api import find_threads, get_thread_of_caller
from app.routes.agent_runs import (
    CancelAction,
    RunCreate,
    mode_set,
    query_of,
    run_once_started,
    start_run,
    values_when_over,
    when_left,
)
from app.routes.agent_stream import ALL_EVENTS, run_links, stream_response
from memory.models import ChatSession, User
from memory.sessions import Owner
from threads.agent_runs import AgentRuns
from threads.operations import Threads

router = APIRouter(tags=["agent server api"])

BATCH_MAX = 10  # runs in one `/runs/batch`: each is a new thread and a turn


class StatelessRunCreate(RunCreate):
    on_completion: Literal["delete", "keep"] = "delete"


class BatchRunCreate(StatelessRunCreate):
    thread_id: str | None = None  # a run of the batch may name a thread of the caller's


async def start_stateless(
    runs: AgentRuns, threads: Threads, user: User, body: StatelessRunCreate
) -> tuple[ChatSession, str, int]:
    """Start the run on a new thread: the thread, the run's id and the number
    its frames follow. A run refused (bad input, or a failure) leaves no thread."""
    check_stateless(body)  # before a thread is made for it
    session = await threads.deps.sessions.create(Owner(user_id=user.id))
    try:
        run_id, after = await start_run(runs, threads, session, body)
    except Exception:
        await threads.delete(session.id, Owner(user_id=session.user_id))
        raise
    except BaseException:  # cancelled: the thread goes in the background
        runs.discard_when_over(session, None)
        raise
    return session, run_id, after


def check_stateless(body: RunCreate) -> None:
    """A stateless run starts a new thread: it has no earlier state to start from."""
    if body.checkpoint_id is not None or body.checkpoint is not None:
        raise HTTPException(422, "a stateless run has no checkpoint to start from")
    query_of(body)  # 422 before a thread is made for a run with no question


@router.post("/runs/wait")
async def wait_stateless(
    body: StatelessRunCreate, user: UserDep, threads: ThreadsDep, runs: AgentRunsDep
) -> dict[str, Any]:
    """Run a turn on a new thread; its values once it is done."""
    session, run_id, after = await start_stateless(runs, threads, user, body)
    delete = body.on_completion == "delete"
    try:
        values = await values_when_over(runs, threads, session, run_id, after)
    except BaseException:
        if delete:
            runs.discard_when_over(session, run_id)
        raise
    if delete:  # before the answer: once it is read, the thread is gone, its lessons kept
        await threads.discard(session)
    return values


@router.post("/runs/stream")
async def stream_stateless(
    body: StatelessRunCreate, user: UserDep, threads: ThreadsDep, runs: AgentRunsDep
) -> StreamingResponse:
    """Stream a turn on a new thread (its id in the `Content-Location` header)."""
    session, run_id, after = await start_stateless(runs, threads, user, body)

    left = when_left(runs, session, run_id, body)

    def at_end(ended: bool) -> None:
        left(ended)  # with on_disconnect "cancel", a client leaving stops the run
        if body.on_completion == "delete":
            runs.discard_when_over(session, run_id)

    modes, seen = mode_set(body.stream_mode), (after, ALL_EVENTS)
    return stream_response(runs, threads, session, run_id, modes, seen, at_end=at_end)


@router.post("/runs")
async def create_stateless(
    body: StatelessRunCreate, user: UserDep, threads: ThreadsDep, runs: AgentRunsDep
) -> JSONResponse:
    """Start a turn on a new thread in the background (the run names its thread)."""
    session, run_id, after = await start_stateless(runs, threads, user, body)
    try:
        run = await run_once_started(runs, threads, session, run_id, after)
    finally:  # after its status is read: a fast run may be over already
        if body.on_completion == "delete":
            runs.discard_when_over(session, run_id)
    return JSONResponse(run, headers=run_links(session.id, run_id))


@router.post("/runs/batch")
async def create_batch(
    body: Annotated[list[BatchRunCreate], Body(max_length=BATCH_MAX)],
    user: UserDep,
    threads: ThreadsDep,
    runs: AgentRunsDep,
    request: Request,
) -> list[dict[str, Any]]:
    """Start several runs in the background, each on a new thread or on the
    caller's thread it names. Every run is checked before any starts: one bad
    run (no question, a thread that is not the caller's) starts none."""
    named: dict[int, ChatSession] = {}
    for i, run in enumerate(body):
        if run.thread_id is not None:
            named[i] = await get_thread_of_caller(run.thread_id, request, threads)
            query_of(run)
        else:
            check_stateless(run)
    started, discarded = [], []
    try:
        for i, run in enumerate(body):
            if i in named:
                session = named[i]
                run_id, after = await start_run(runs, threads, session, run)
            else:
                session, run_id, after = await start_stateless(runs, threads, user, run)
                if run.on_completion == "delete":
                    discarded.append((session, run_id))
            started.append(await run_once_started(runs, threads, session, run_id, after))
    finally:  # once their status is read, as `runs` does
        for session, run_id in discarded:
            runs.discard_when_over(session, run_id)
    return started


# -- cancelling many runs -----------------------------------------------------------

CANCEL_MAX = 1000  # runs (and busy threads) one `/runs/cancel` looks at
RUN_IDS_MAX = 100  # runs one `/runs/cancel` names


class CancelMany(BaseModel):
    thread_id: str | None = None
    run_ids: list[str] | None = Field(None, max_length=RUN_IDS_MAX)
    status: Literal["pending", "running", "all"] | None = None


@router.post("/runs/cancel", status_code=204, response_class=Response)
async def cancel_many(
    body: CancelMany,
    user: UserDep,
    threads: ThreadsDep,
    runs: AgentRunsDep,
    request: Request,
    action: CancelAction = "interrupt",
) -> None:
    """Cancel runs as `runs/{r}/cancel` does: the `run_ids` of a thread, or the
    runs of a `status` (`pending`: queued; `running`; `all`) on a thread or on
    all of the caller's threads (their newest 1,000). Runs that are over are
    left as they are."""
    if body.run_ids and body.thread_id is None:
        raise HTTPException(422, "run_ids name runs of one thread: give its thread_id")
    if not body.run_ids and body.status is None:
        raise HTTPException(422, "give run_ids (with their thread_id) or a status")
    rollback = action == "rollback"
    if body.thread_id is not None:
        session = await get_thread_of_caller(body.thread_id, request, threads)
        wanted = body.run_ids or await runs_of_status(runs, threads, session, body.status)
        for run_id in wanted:
            await runs.cancel(session, run_id, rollback=rollback)
        return
    if body.status in ("pending", "all"):
        by_thread: dict[str, ChatSession] = {}
        for run in await runs.store.queued_of_user(user.id, CANCEL_MAX):
            if run.session_id not in by_thread:
                by_thread[run.session_id] = await threads.deps.sessions.get(run.session_id)
            await runs.cancel_queued(by_thread[run.session_id], run.id)
    if body.status in ("running", "all"):
        for thread in await find_threads(threads, user.id, None, {}, "busy", CANCEL_MAX):
            session = await threads.deps.sessions.get(thread["thread_id"])
            running = await runs_of_status(runs, threads, session, "running")
            for run_id in running:
                await runs.cancel(session, run_id, rollback=rollback)


async def runs_of_status(
    runs: AgentRuns, threads: Threads, session: ChatSession, status: str | None
) -> list[str]:
    """The ids of the thread's queued runs (`pending`), of its running turn
    (`running`), or both (`all`)."""
    found: list[str] = []
    if status in ("pending", "all"):
        found += [run.id for run in await runs.store.open_runs(session.id) if run.state == "queued"]
    if status in ("running", "all") and await threads.is_running(session.id):
        last = await threads.deps.journal.tail(session.id, 1)
        if last and last[-1].role == "user":
            found.append(last[-1].id)
    return found
