"""Request dependencies as `Annotated` aliases, so routes read like prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from app.auth import ANON_COOKIE, LOGIN_COOKIE, read_cookie, token_hash
from app.settings import Settings
from memory.memories import MemoryStore
from memory.models import User
from memory.sessions import Owner
from threads.access import Caller, Credentials
from threads.accounts import Accounts
from threads.agent_runs import AgentRuns
from threads.operations import Threads
from threads.runtime import Runtime


def runtime_of(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime


def settings_of(conn: HTTPConnection) -> Settings:
    settings: Settings = conn.app.state.settings
    return settings


# The dependencies are coroutines, though none of them waits: FastAPI runs a
# plain function on a worker thread, a hand-off there and back per dependency
# per request.


async def get_runtime(conn: HTTPConnection) -> Runtime:
    return runtime_of(conn)


async def get_threads(conn: HTTPConnection) -> Threads:
    return runtime_of(conn).threads


async def get_agent_runs(conn: HTTPConnection) -> AgentRuns:
    return runtime_of(conn).agent_runs


async def get_accounts(conn: HTTPConnection) -> Accounts:
    return runtime_of(conn).accounts


async def get_memories(conn: HTTPConnection) -> MemoryStore:
    return runtime_of(conn).memories


async def get_settings(conn: HTTPConnection) -> Settings:
    return settings_of(conn)


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return read_cookie(conn, LOGIN_COOKIE, settings_of(conn))


def anon_token(conn: HTTPConnection) -> str | None:
    """The anonymous owner's token shown (header or cookie); proof only if the server
    issued it (threads.access.identify checks)."""
    return conn.headers.get("x-anon-token") or read_cookie(conn, ANON_COOKIE, settings_of(conn))


def credentials_of(conn: HTTPConnection) -> Credentials:
    """The token hashes a request or socket shows (bearer header or cookies)."""
    login, anon = bearer_token(conn), anon_token(conn)
    api_key = conn.headers.get("x-api-key", "").strip()
    return Credentials(
        login_token_hash=token_hash(login) if login else None,
        anon_token_hash=token_hash(anon) if anon else None,
        api_key_hash=token_hash(api_key) if api_key else None,
    )


async def resolve_caller(conn: HTTPConnection, threads: Threads) -> Caller:
    """Identify the caller (HTTP and WebSocket alike)."""
    return await threads.identify(credentials_of(conn))


async def get_caller(request: Request, threads: Annotated[Threads, Depends(get_threads)]) -> Caller:
    return await resolve_caller(request, threads)


async def get_owner(caller: Annotated[Caller, Depends(get_caller)]) -> Owner:
    owner = caller.owner
    if owner is None:
        raise HTTPException(401, "log in, or create a session first")
    return owner


async def get_user(caller: Annotated[Caller, Depends(get_caller)]) -> User:
    if caller.user is None:
        raise HTTPException(401, "log in first")
    return caller.user


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ThreadsDep = Annotated[Threads, Depends(get_threads)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
AgentRunsDep = Annotated[AgentRuns, Depends(get_agent_runs)]
MemoriesDep = Annotated[MemoryStore, Depends(get_memories)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
OwnerDep = Annotated[Owner, Depends(get_owner)]
UserDep = Annotated[User, Depends(get_user)]
