"""LangGraph's Agent Server API, the subset `langgraph_sdk.get_client(url=...)`
uses (docs/agent-server-api.md): the assistant and threads here, runs in
app/routes/agent_runs.py.

A thread is a Threadline session; there is one assistant, `threadline`. Every
call goes through the same `threads/` layer as the WebSocket: the same journal,
lock, rights and memory, so a thread started here shows in the browser and the
other way round. The caller is a logged-in user (Bearer token).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from app.deps import ThreadsDep, UserDep, credentials_of
from memory.errors import SessionNotFound
from memory.models import ChatMessage, ChatSession
from memory.sessions import Owner
from threads.access import NotSignedIn
from threads.locks import SessionBusy
from threads.operations import Threads

router = APIRouter(tags=["agent server api"])

ASSISTANT_ID = "threadline"
# A stable UUID for the one assistant, for clients that insist on a UUID.
ASSISTANT_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "threadline:assistant"))
CREATED = "2026-01-01T00:00:00+00:00"
STATE_MESSAGES = 200  # the newest messages a thread's `values` carries
HISTORY_MAX = 100
STATUS_SCANNED = 1_000  # threads read at most by a search that filters on status


def assistant() -> dict[str, Any]:
    return {
        "assistant_id": ASSISTANT_UUID,
        "graph_id": ASSISTANT_ID,
        "name": "Threadline",
        "description": "A chat agent that remembers: the supervisor graph of Threadline.",
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": CREATED,
        "updated_at": CREATED,
    }


def known_assistant(assistant_id: str | None) -> None:
    if assistant_id not in (None, ASSISTANT_ID, ASSISTANT_UUID):
        raise HTTPException(404, "no such assistant: this server has one, 'threadline'")


# -- messages and threads in the API's shapes ------------------------------------


def message_dict(row: ChatMessage) -> dict[str, Any]:
    """A journaled message as a LangChain message dict."""
    kind = "human" if row.role == "user" else "ai"
    return {
        "type": kind,
        "id": row.id,
        "content": row.content,
        "name": None,
        "additional_kwargs": {},
        "response_metadata": {"seq": row.seq} if kind == "ai" else {},
        **({"tool_calls": [], "invalid_tool_calls": []} if kind == "ai" else {}),
    }


def iso(moment: datetime | None) -> str:
    return (moment or datetime.now(UTC)).isoformat()


async def thread_dict(
    threads: Threads, session: ChatSession, *, values: bool = True
) -> dict[str, Any]:
    busy = await threads.is_running(session.id)
    return {
        "thread_id": session.id,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "metadata": {
            **session.tags,
            "graph_id": ASSISTANT_ID,
            "assistant_id": ASSISTANT_UUID,
            "title": session.title,
        },
        "status": "busy" if busy else "idle",
        "values": {"messages": await journal_messages(threads, session)} if values else {},
        "interrupts": {},
    }


async def journal_messages(threads: Threads, session: ChatSession) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(await journal_messages_json(threads, session.id))
    return messages


async def journal_messages_json(threads: Threads, session_id: str) -> str:
    """The thread's newest messages as `message_dict`s, as JSON text (written by
    PostgreSQL: the end of every streamed run sends them)."""
    return await threads.deps.journal.tail_json(session_id, STATE_MESSAGES)


def checkpoint_of(session_id: str, seq: int) -> dict[str, Any]:
    """A checkpoint id names a journal position: `seq-<n>`."""
    return {"thread_id": session_id, "checkpoint_ns": "", "checkpoint_id": f"seq-{seq}"}


def state_at(session: ChatSession, rows: list[ChatMessage]) -> dict[str, Any]:
    """The thread's state once the journal held `rows` (oldest first)."""
    seq = rows[-1].seq if rows else 0
    parent = rows[-3].seq if len(rows) >= 3 else None
    return {
        "values": {"messages": [message_dict(row) for row in rows]},
        "next": [],
        "tasks": [],
        "interrupts": [],
        "checkpoint": checkpoint_of(session.id, seq),
        "parent_checkpoint": checkpoint_of(session.id, parent) if parent is not None else None,
        "metadata": {"source": "loop", "step": seq, "graph_id": ASSISTANT_ID},
        "created_at": iso(rows[-1].created_at if rows else session.created_at),
    }


async def get_thread_of_caller(
    thread_id: str, request: Request, threads: ThreadsDep
) -> ChatSession:
    """The logged-in caller's thread `thread_id`, the caller and the thread read
    in one statement (Threads.authorize): every call on a thread starts with it.
    Another user's thread answers exactly like a missing one."""
    try:
        return await threads.authorize(credentials_of(request), thread_id, user_only=True)
    except NotSignedIn as exc:
        raise HTTPException(401, "log in first") from exc
    except SessionNotFound as exc:
        raise HTTPException(404, "thread not found") from exc


ThreadDep = Annotated[ChatSession, Depends(get_thread_of_caller)]


# -- info and the assistant --------------------------------------------------------


@router.get("/info")
async def info() -> dict[str, Any]:
    return {"version": "threadline", "flags": {"assistants": True, "crons": False}}


# -- threads -----------------------------------------------------------------------


class ThreadCreate(BaseModel):
    thread_id: str | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"


@router.post("/threads")
async def create_thread(
    body: ThreadCreate, user: UserDep, threads: ThreadsDep, request: Request
) -> dict[str, Any]:
    if body.thread_id is not None:
        try:
            existing = await get_thread_of_caller(body.thread_id, request, threads)
        except HTTPException:
            raise HTTPException(
                422, "thread ids are made by the server: create without thread_id"
            ) from None
        if body.if_exists == "do_nothing":
            return await thread_dict(threads, existing)
        raise HTTPException(409, "thread already exists")
    title, tags = title_and_tags(body.metadata or {})
    session = await threads.deps.sessions.create(
        Owner(user_id=user.id), title=title[:200] if title else None, tags=tags
    )
    return await thread_dict(threads, session)


# Keys of a thread's metadata that are Threadline's own: the rest are the
# client's tags, kept as given (memory.journal.check_metadata bounds them).
OWN_KEYS = ("graph_id", "assistant_id", "title")


def title_and_tags(metadata: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A thread's metadata as given: its title (a string), and the client's tags."""
    title = metadata.get("title")
    tags = {key: value for key, value in metadata.items() if key not in OWN_KEYS}
    return (str(title) if title is not None else None), tags


@router.get("/threads/{thread_id}")
async def get_thread(session: ThreadDep, threads: ThreadsDep) -> dict[str, Any]:
    return await thread_dict(threads, session)


class ThreadPatch(BaseModel):
    metadata: dict[str, Any] = Field(default_factory=dict)


@router.patch("/threads/{thread_id}")
async def patch_thread(
    session: ThreadDep, body: ThreadPatch, threads: ThreadsDep
) -> dict[str, Any]:
    """`metadata.title` is the session's title; the other keys are merged into
    the thread's metadata (a key given again takes its new value)."""
    title, tags = title_and_tags(body.metadata)
    if title is not None or tags:
        session = await threads.deps.sessions.update(
            session.id, Owner(user_id=session.user_id), title=title, tags=tags
        )
    return await thread_dict(threads, session)


@router.delete("/threads/{thread_id}", status_code=204, response_class=Response)
async def delete_thread(session: ThreadDep, threads: ThreadsDep) -> None:
    await threads.delete(session.id, Owner(user_id=session.user_id))


@router.post("/threads/{thread_id}/copy")
async def copy_thread(session: ThreadDep, threads: ThreadsDep) -> dict[str, Any]:
    """A new thread holding this one's conversation (409 while a run is on it)."""
    try:
        copy = await threads.copy(session)
    except SessionBusy as exc:
        raise HTTPException(409, "the thread is busy with a run; copy it when it is done") from exc
    return await thread_dict(threads, copy)


class ThreadPrune(BaseModel):
    thread_ids: list[str] = Field(max_length=100)
    strategy: Literal["delete", "keep_latest"] = "delete"


@router.post("/threads/prune")
async def prune_threads(body: ThreadPrune, request: Request, threads: ThreadsDep) -> dict[str, Any]:
    """`delete`: the caller's threads among `thread_ids` are deleted (one a run
    is on is left: busy); `keep_latest`: their checkpoints but the latest go,
    as they do after every turn here. Ids that are not the caller's threads
    are passed over, as missing ones are. `pruned_count`: the threads pruned."""
    pruned = 0
    for thread_id in dict.fromkeys(body.thread_ids):
        try:
            session = await get_thread_of_caller(thread_id, request, threads)
            if body.strategy == "delete":
                await threads.delete(session.id, Owner(user_id=session.user_id))
            else:
                await threads.keep_latest_checkpoint(session)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            continue
        except (SessionBusy, SessionNotFound):
            continue
        pruned += 1
    return {"pruned_count": pruned}


class ThreadSearch(BaseModel):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=100)
    offset: int = Field(0, ge=0, le=10_000)


class ThreadCount(BaseModel):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


def wanted_tags(
    metadata: dict[str, Any] | None, status: str | None, values: dict[str, Any] | None
) -> tuple[str | None, dict[str, Any]] | None:
    """The title and the client's own keys a search or count asks for; None
    when no thread can match (another graph, another assistant, a status a
    thread here never has). Threads are not searched by their values (the
    journal): such a search is refused, not answered wrongly."""
    if values:
        raise HTTPException(422, "threads are not searched by values here: by metadata, status")
    wanted = dict(metadata or {})
    if wanted.pop("graph_id", ASSISTANT_ID) != ASSISTANT_ID:
        return None
    if wanted.pop("assistant_id", ASSISTANT_UUID) not in (ASSISTANT_UUID, ASSISTANT_ID):
        return None
    if status in ("interrupted", "error"):  # a thread here is only idle or busy
        return None
    return title_and_tags(wanted)


@router.post("/threads/count")
async def count_threads(body: ThreadCount, user: UserDep, threads: ThreadsDep) -> int:
    """How many threads `search` finds with these filters, over all its pages
    (with a status: of the newest STATUS_SCANNED threads of that metadata)."""
    if (wanted := wanted_tags(body.metadata, body.status, body.values)) is None:
        return 0
    title, tags = wanted
    if body.status is None:
        owner = Owner(user_id=user.id)
        return await threads.deps.sessions.count(owner, archived=None, title=title, tags=tags)
    return len(await find_threads(threads, user.id, title, tags, body.status, STATUS_SCANNED))


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, user: UserDep, threads: ThreadsDep) -> list[Any]:
    """The user's threads, newest first, of the metadata given (each key with
    its value: the title, and the client's own keys) and the status."""
    if (wanted := wanted_tags(body.metadata, body.status, body.values)) is None:
        return []
    title, tags = wanted
    found = await find_threads(threads, user.id, title, tags, body.status, body.offset + body.limit)
    return found[body.offset : body.offset + body.limit]


async def find_threads(
    threads: Threads,
    user_id: str,
    title: str | None,
    tags: dict[str, Any],
    status: str | None,
    want: int,
) -> list[dict[str, Any]]:
    """The user's newest `want` threads of a title, tags and status."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    scanned = 0
    while len(found) < want and scanned < STATUS_SCANNED:
        # The metadata is matched by the query; the status (whether a turn runs,
        # in any process) only here, so a page may not fill: read on, through
        # the newest STATUS_SCANNED threads of that metadata at most.
        sessions, cursor = await threads.deps.sessions.list(
            Owner(user_id=user_id),
            archived=None,
            title=title,
            tags=tags,
            limit=min(want, STATUS_SCANNED),
            cursor=cursor,
        )
        scanned += len(sessions)
        for session in sessions:
            thread = await thread_dict(threads, session, values=False)
            if status is None or thread["status"] == status:
                found.append(thread)
        if cursor is None:
            break
    return found


@router.get("/threads/{thread_id}/state")
async def get_state(session: ThreadDep, threads: ThreadsDep) -> dict[str, Any]:
    rows = await threads.deps.journal.tail(session.id, STATE_MESSAGES)
    return state_at(session, rows)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    session: ThreadDep, checkpoint_id: str, threads: ThreadsDep
) -> dict[str, Any]:
    """The state a checkpoint id of `history` names (`seq-<n>`): the journal as
    it stood at message n."""
    return await state_at_checkpoint(threads, session, checkpoint_id)


class CheckpointQuery(BaseModel):
    checkpoint: dict[str, Any]


@router.post("/threads/{thread_id}/state/checkpoint")
async def get_state_at_checkpoint(
    session: ThreadDep, body: CheckpointQuery, threads: ThreadsDep
) -> dict[str, Any]:
    return await state_at_checkpoint(threads, session, checkpoint_id_in(body.checkpoint))


async def state_at_checkpoint(
    threads: Threads, session: ChatSession, checkpoint_id: Any
) -> dict[str, Any]:
    seq = seq_of(checkpoint_id)
    if seq is None or seq < 0 or seq > session.last_seq:
        raise HTTPException(404, "no such checkpoint: ids are seq-<n>, as history gives them")
    rows, _ = await threads.deps.journal.page(session.id, before_seq=seq + 1, limit=STATE_MESSAGES)
    return state_at(session, rows)


class HistoryQuery(BaseModel):
    limit: int = Field(10, ge=1, le=HISTORY_MAX)
    # As the SDK sends it: a checkpoint id, a checkpoint, or a config holding one.
    before: str | dict[str, Any] | None = None


@router.post("/threads/{thread_id}/history")
async def get_history(
    session: ThreadDep, body: HistoryQuery, threads: ThreadsDep
) -> list[dict[str, Any]]:
    """One state per answered turn, newest first: the journal after each answer."""
    rows = await threads.deps.journal.tail(session.id, STATE_MESSAGES)
    before = seq_of(checkpoint_id_in(body.before))
    ends = [i for i, row in enumerate(rows) if row.role != "user" or i == len(rows) - 1]
    states = []
    for end in reversed(ends):
        if before is not None and rows[end].seq >= before:
            continue
        states.append(state_at(session, rows[: end + 1]))
        if len(states) == body.limit:
            break
    return states


def checkpoint_id_in(before: str | dict[str, Any] | None) -> Any:
    """The checkpoint id `before` names: itself, a checkpoint's, or a config's."""
    if not isinstance(before, dict):
        return before
    configurable = before.get("configurable")
    if isinstance(configurable, dict) and "checkpoint_id" in configurable:
        return configurable["checkpoint_id"]
    return before.get("checkpoint_id")


def seq_of(checkpoint_id: Any) -> int | None:
    if isinstance(checkpoint_id, str) and checkpoint_id.startswith("seq-"):
        try:
            return int(checkpoint_id[4:])
        except ValueError:
            pass
    return None
