"""Request dependencies as `Annotated` aliases, so routes read like prose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from app.auth import ANON_COOKIE, LOGIN_COOKIE, token_hash
from app.services import Services
from memory.models import User
from memory.sessions import Owner


@dataclass
class Caller:
    """Who is asking: a logged-in user, an anonymous owner, both, or nobody."""

    user: User | None = None
    login_token_hash: str | None = None
    anon_token_hash: str | None = None

    @property
    def owner(self) -> Owner | None:
        if self.user is None and self.anon_token_hash is None:
            return None
        return Owner(
            user_id=self.user.id if self.user else None, anon_token_hash=self.anon_token_hash
        )


def get_services(conn: HTTPConnection) -> Services:
    services: Services = conn.app.state.services
    return services


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.cookies.get(LOGIN_COOKIE)


async def resolve_caller(conn: HTTPConnection, services: Services) -> Caller:
    """Identify the caller from the bearer header or cookies (HTTP and WebSocket alike)."""
    caller = Caller()
    token = bearer_token(conn)
    if token:
        hashed = token_hash(token)
        caller.user = await services.users.user_for_token(hashed)
        caller.login_token_hash = hashed if caller.user else None
    anon = conn.headers.get("x-anon-token") or conn.cookies.get(ANON_COOKIE)
    if anon:
        caller.anon_token_hash = token_hash(anon)
    return caller


async def get_caller(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Caller:
    return await resolve_caller(request, services)


async def get_owner(caller: Annotated[Caller, Depends(get_caller)]) -> Owner:
    owner = caller.owner
    if owner is None:
        raise HTTPException(401, "log in, or create a session first")
    return owner


async def get_user(caller: Annotated[Caller, Depends(get_caller)]) -> User:
    if caller.user is None:
        raise HTTPException(401, "log in first")
    return caller.user


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
OwnerDep = Annotated[Owner, Depends(get_owner)]
UserDep = Annotated[User, Depends(get_user)]
