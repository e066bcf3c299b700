"""Accounts: register, log in and out, me, change password, delete the account."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import AfterValidator, Field, StringConstraints

from app.auth import (
    ANON_COOKIE,
    LOGIN_COOKIE,
    check_new_password,
    clear_private_cookie,
    hash_password,
    new_token,
    set_private_cookie,
    token_hash,
    verify_or_waste,
)
from app.deps import AccountsDep, CallerDep, SettingsDep, ThreadsDep, UserDep
from app.ratelimit import RateLimits, RateLimitsDep, client_ip
from app.schemas import PlainText, RequestBody, user_out
from memory.models import User
from memory.users import InvalidCredentials, WrongPassword

router = APIRouter(prefix="/api/auth", tags=["auth"])

EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
Email = Annotated[PlainText, StringConstraints(strip_whitespace=True, max_length=320)]
# Length after stripping, and not a common password: see app.auth.check_new_password.
NewPassword = Annotated[
    PlainText, StringConstraints(max_length=1024), AfterValidator(check_new_password)
]
Password = Annotated[PlainText, StringConstraints(max_length=1024)]
DisplayName = Annotated[PlainText, StringConstraints(strip_whitespace=True, max_length=200)]


class Registration(RequestBody):
    email: Annotated[Email, StringConstraints(pattern=EMAIL_SHAPE)]
    password: NewPassword
    display_name: DisplayName | None = None


class Credentials(RequestBody):
    email: Email
    password: Password


class PasswordChange(RequestBody):
    current_password: Password
    new_password: NewPassword


class PasswordConfirmation(RequestBody):
    password: Password


async def confirm_password(limits: RateLimits, request: Request, user: User, password: str) -> None:
    """A logged-in user re-enters their password; throttled like a login attempt."""
    address = client_ip(request)
    await limits.password_attempt(address, user.email)
    if not await asyncio.to_thread(verify_or_waste, password, user.password_hash):
        await limits.password_failed(address, user.email)
        raise WrongPassword("the password is wrong")
    await limits.password_succeeded(address, user.email)


@router.post("/register", status_code=201)
async def register(
    body: Registration, request: Request, threads: ThreadsDep, limits: RateLimitsDep
) -> dict[str, Any]:
    """A new account (201); an email already taken in any letter case answers 409."""
    await limits.registration(client_ip(request))
    password_hash = await asyncio.to_thread(hash_password, body.password)
    user = await threads.users.create(body.email, password_hash, body.display_name or None)
    return user_out(user)


@router.post("/login")
async def login(
    body: Credentials,
    request: Request,
    response: Response,
    threads: ThreadsDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> dict[str, Any]:
    """`{user, token}` and the login cookie; any failure answers the same 401, and
    repeated failures from one address for one email answer 429 for a while."""
    address = client_ip(request)
    await limits.password_attempt(address, body.email)
    user = await threads.users.by_email(body.email)
    known_hash = user.password_hash if user is not None else None
    password_ok = await asyncio.to_thread(verify_or_waste, body.password, known_hash)
    if user is None or not password_ok or not user.is_active:
        await limits.password_failed(address, body.email)
        raise InvalidCredentials("email or password is wrong")
    await limits.password_succeeded(address, body.email)
    token = new_token()
    ttl = timedelta(days=settings.token_ttl_days)
    await threads.users.add_token(token_hash(token), user.id, datetime.now(UTC) + ttl)
    set_private_cookie(response, LOGIN_COOKIE, token, ttl, settings)
    return {"user": user_out(user), "token": token}


@router.post("/logout", status_code=204, response_class=Response)
async def logout(
    caller: CallerDep, response: Response, accounts: AccountsDep, settings: SettingsDep
) -> None:
    """Revoke the login token in use and end the anonymous owner shown (if any), and
    clear both cookies, so the next person at this browser finds nothing; always 204.
    Sockets opened with either token are closed (4401)."""
    await accounts.logout(caller)
    clear_private_cookie(response, LOGIN_COOKIE, settings)
    clear_private_cookie(response, ANON_COOKIE, settings)


@router.get("/me")
async def me(user: UserDep) -> dict[str, Any]:
    return user_out(user)


class AccountChange(RequestBody):
    # Days after their last activity that this account's threads, and the
    # memories learned from them, are kept; null: kept until deleted.
    retention_days: Annotated[int, Field(ge=1, le=36500)] | None


@router.patch("/me")
async def change_account(body: AccountChange, user: UserDep, threads: ThreadsDep) -> dict[str, Any]:
    """The account's settings: `retention_days` (the cleanup deletes older threads
    and what was learned from them, as a deletion with `forget=true` would)."""
    return user_out(await threads.users.set_retention(user.id, body.retention_days))


@router.get("/identity")
async def identity(caller: CallerDep) -> dict[str, Any]:
    """Who this request is, answered 200 even for nobody (a first visit asks
    this, so the page shows no 401): the logged-in user or null, and whether
    it carries a live anonymous identity the server issued."""
    return {
        "user": user_out(caller.user) if caller.user is not None else None,
        "anonymous": caller.anonymous,
    }


@router.post("/password", status_code=204, response_class=Response)
async def change_password(
    body: PasswordChange,
    request: Request,
    user: UserDep,
    caller: CallerDep,
    accounts: AccountsDep,
    limits: RateLimitsDep,
) -> None:
    """Set a new password; every other login token of the user is revoked, and
    sockets opened with those tokens are closed (4401)."""
    await confirm_password(limits, request, user, body.current_password)
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    await accounts.change_password(caller, new_hash)


@router.delete("/me", status_code=204, response_class=Response)
async def delete_account(
    body: PasswordConfirmation,
    request: Request,
    response: Response,
    user: UserDep,
    accounts: AccountsDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> None:
    """Delete the account and everything of it; the body must carry the password.
    Running turns are stopped first; every socket of the account is closed."""
    await confirm_password(limits, request, user, body.password)
    await accounts.delete(user)
    clear_private_cookie(response, LOGIN_COOKIE, settings)


# -- personal API keys (`x-api-key`), for the Agent Server API and MCP ----------------


class ApiKeyRequest(RequestBody):
    name: Annotated[PlainText, StringConstraints(min_length=1, max_length=100)]


@router.post("/api-keys", status_code=201)
async def create_api_key(body: ApiKeyRequest, user: UserDep, threads: ThreadsDep) -> dict[str, Any]:
    """A new key; the key itself is in this answer only (only its hash is kept)."""
    key = "tl_" + new_token()
    made = await threads.users.api_keys.create(user.id, body.name, token_hash(key), key[:10])
    return {**made.as_dict(), "key": key}


@router.get("/api-keys")
async def list_api_keys(user: UserDep, threads: ThreadsDep) -> dict[str, Any]:
    return {"api_keys": [k.as_dict() for k in await threads.users.api_keys.list(user.id)]}


@router.delete("/api-keys/{key_id}", status_code=204, response_class=Response)
async def revoke_api_key(key_id: str, user: UserDep, threads: ThreadsDep) -> None:
    await threads.users.api_keys.revoke(user.id, key_id)
