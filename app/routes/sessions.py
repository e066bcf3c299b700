"""Sessions (threads): create, list and search, get, rename or archive, delete, page messages.

A session that is not the caller's answers exactly like one that does not exist.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import StringConstraints

from app.auth import (
    ANON_COOKIE,
    clear_private_cookie,
    new_token,
    read_cookie,
    set_private_cookie,
    token_hash,
)
from app.deps import AccountsDep, CallerDep, OwnerDep, SettingsDep, ThreadsDep, bearer_token
from app.exports import export_json, export_markdown
from app.ratelimit import RateLimitsDep, client_ip
from app.schemas import PlainText, RequestBody, session_out
from app.settings import Settings
from memory.errors import InvalidInput
from memory.models import ChatSession
from memory.sessions import TITLE_MAX, Owner
from threads.operations import Threads

SEQ_MAX = 2**62  # well inside BIGINT, so no number in a query string overflows the database
Title = Annotated[PlainText, StringConstraints(max_length=TITLE_MAX)]


def anon_ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.anon_ttl_hours)


async def slide_anon_cookie(
    request: Request, response: Response, caller: CallerDep, settings: SettingsDep
) -> None:
    """Anonymous sessions expire after a day idle; the owner's cookie slides along
    with every sessions call, so it never lapses before the sessions it opens (the
    owner's row slides in threads.access). Only a cookie the server issued, still
    live, slides: a made-up or ended one is left to lapse."""
    token = read_cookie(request, ANON_COOKIE, settings)
    if token and caller.anon_token_hash == token_hash(token):
        set_private_cookie(response, ANON_COOKIE, token, anon_ttl(settings), settings)


router = APIRouter(
    prefix="/api/sessions", tags=["sessions"], dependencies=[Depends(slide_anon_cookie)]
)


ModelName = Annotated[PlainText, StringConstraints(min_length=1, max_length=200)]


class NewSession(RequestBody):
    title: Title | None = None
    memory: bool = True
    model: ModelName | None = None  # one of GET /api/models; none: the default


class SessionChange(RequestBody):
    title: Title | None = None
    archived: bool | None = None
    model: ModelName | None = None  # one of GET /api/models; null: back to the default


async def offered(threads: Threads, model: str | None) -> str | None:
    """`model` if the server offers it (422 otherwise); the default is stored as none."""
    models = threads.deps.models
    names = await models.names() if models is not None else ["offline"]
    if model is not None and model not in names:
        raise InvalidInput(f"no model {model!r} here; GET /api/models lists them")
    default = models.default_name if models is not None else "offline"
    return None if model == default else model


async def with_preview(threads: Threads, session: ChatSession) -> dict[str, Any]:
    """One session as the API shows it, with its last message's preview."""
    last = await threads.deps.sessions.last_messages([session.id])
    return session_out(session, last.get(session.id))


@router.post("", status_code=201)
async def create_session(
    request: Request,
    response: Response,
    caller: CallerDep,
    threads: ThreadsDep,
    accounts: AccountsDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
    body: NewSession | None = None,
) -> dict[str, Any]:
    """A new session; without a login, owned by the caller's anonymous owner, issued
    here (and returned as `anon_token` and a cookie) when they have none. A token
    the server did not issue, or that expired, is never adopted: its bearer gets a
    new owner like anyone without one."""
    body = body or NewSession()
    if caller.user is None and bearer_token(request) is not None:
        raise HTTPException(401, "the login token is invalid or expired; log in again")
    anon_token = None
    owner = caller.owner
    if caller.user is None:
        await limits.anonymous_session(client_ip(request))
    if owner is None:
        # Issued before its session exists: a failure in between leaves an owner
        # with nothing, never a session that no token can reach.
        anon_token = new_token()
        owner = Owner(anon_token_hash=token_hash(anon_token))
        await accounts.issue_anonymous(owner.anon_token_hash or "", anon_ttl(settings))
    model = await offered(threads, body.model)
    session = await threads.deps.sessions.create(
        owner, title=body.title, memory=body.memory, model=model
    )
    created = session_out(session)
    if anon_token is not None:
        created["anon_token"] = anon_token
        set_private_cookie(response, ANON_COOKIE, anon_token, anon_ttl(settings), settings)
    return created


@router.get("")
async def list_sessions(
    owner: OwnerDep,
    threads: ThreadsDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    archived: Literal["false", "true", "all"] = "false",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """The caller's sessions, newest activity first; `next_cursor` fetches the next page."""
    sessions, next_cursor = await threads.deps.sessions.list(
        owner,
        archived=None if archived == "all" else archived == "true",
        q=(q or "").strip() or None,
        limit=limit,
        cursor=cursor or None,
    )
    last = await threads.deps.sessions.last_messages([s.id for s in sessions])
    return {
        "sessions": [session_out(s, last.get(s.id)) for s in sessions],
        "next_cursor": next_cursor,
    }


@router.get("/{session_id}")
async def get_session(session_id: str, owner: OwnerDep, threads: ThreadsDep) -> dict[str, Any]:
    return await with_preview(threads, await threads.open(session_id, owner))


@router.patch("/{session_id}")
async def change_session(
    session_id: str, body: SessionChange, owner: OwnerDep, threads: ThreadsDep
) -> dict[str, Any]:
    """Rename (an empty title clears it), (un)archive, or choose the chat's model."""
    changes: dict[str, Any] = {}
    if "model" in body.model_fields_set:
        changes["model"] = await offered(threads, body.model) or ""
    session = await threads.deps.sessions.update(
        session_id, owner, title=body.title, archived=body.archived, **changes
    )
    return await with_preview(threads, session)


@router.delete("/{session_id}", status_code=204, response_class=Response)
async def delete_session(
    session_id: str, owner: OwnerDep, threads: ThreadsDep, forget: bool = False
) -> None:
    """Delete the session, its journal and its checkpoints (with `forget=true`, the
    memories learned from it too); 409 `busy` while a turn runs in it."""
    await threads.delete(session_id, owner, forget=forget)


@router.get("/{session_id}/messages")
async def list_messages(
    session_id: str,
    owner: OwnerDep,
    threads: ThreadsDep,
    before_seq: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """A page of messages ascending by `seq`: the newest before `before_seq`, or the
    first after `after_seq`; `has_more` says whether more lie beyond the page."""
    session = await threads.open(session_id, owner)
    messages, has_more = await threads.deps.journal.page(
        session.id, before_seq=before_seq, after_seq=after_seq, limit=limit
    )
    return {"messages": [m.as_dict() for m in messages], "has_more": has_more}


@router.post("/{session_id}/claim")
async def claim_session(
    session_id: str,
    response: Response,
    caller: CallerDep,
    threads: ThreadsDep,
    accounts: AccountsDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Move the caller's anonymous session into their account, so a visitor who
    registers or logs in keeps the thread they were in. From then on it has
    memory on, and what it said is saved as memories (in the background). If that
    was the anonymous owner's last session, the owner ends and its cookie is cleared."""
    claimed, ended = await accounts.claim(session_id, caller)
    if ended:
        clear_private_cookie(response, ANON_COOKIE, settings)
    return await with_preview(threads, claimed)


@router.get("/{session_id}/export")
async def export_session(
    session_id: str,
    owner: OwnerDep,
    threads: ThreadsDep,
    format: Literal["json", "md"] = "json",
) -> Response:
    """The whole session as versioned JSON or as Markdown, as a download."""
    session, messages = await threads.export(session_id, owner)
    name = f"threadline-{session.id[:8]}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "md":
        body = export_markdown(session, messages)
        return Response(body, media_type="text/markdown; charset=utf-8", headers=headers)
    return JSONResponse(export_json(session, messages), headers=headers)


class MergeRequest(RequestBody):
    other_id: PlainText


@router.post("/{session_id}/merge")
async def merge_into(
    session_id: str, body: MergeRequest, owner: OwnerDep, threads: ThreadsDep
) -> dict[str, Any]:
    """Merge `other_id` into this session (messages ordered by time); the other is removed."""
    return await with_preview(threads, await threads.merge(session_id, body.other_id, owner))


async def require_json(request: Request) -> None:
    """Only `Content-Type: application/json`: a page on another site can send a
    form (text/plain, urlencoded, multipart) or a typeless body with the visitor's
    cookies, but not JSON without the CORS preflight that it never passes, so no
    other site can plant a conversation in someone's account."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "send the file as the body with Content-Type: application/json")


@router.post("/import", status_code=201, dependencies=[Depends(require_json)])
async def import_file(
    request: Request, owner: OwnerDep, threads: ThreadsDep, settings: SettingsDep
) -> dict[str, Any]:
    """Import a Threadline export or a ChatGPT `conversations.json` sent as the body
    (JSON only): all of it or nothing; importing the same file twice adds nothing.
    The body is spooled (at most `max_import_bytes`), then read in a worker thread."""
    limit = settings.max_import_bytes
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidInput(f"the file is larger than {limit} bytes")
            spool.write(chunk)
        spool.seek(0)
        report = await threads.import_file(owner, spool)
    return {
        "sessions": report.session_ids,
        "sessions_created": report.sessions_created,
        "messages_added": report.messages_added,
        "messages_skipped": report.messages_skipped,
    }
