"""A socket's rights, read afresh before every question in one statement
(memory/rights.py), judge as the separate reads did: who the tokens prove, then
whose session it is (Threads.authorize); so do an Agent Server API call's, its
personal API key and thread read in the same statement. On a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from memory.api_keys import USE_RECORDED_EVERY
from memory.errors import SessionNotFound
from memory.models import AnonymousOwner, ApiKey, ChatSession, User
from memory.rights import SLIDE_EVERY
from memory.sessions import Owner
from tests.support.users import create_user
from threads.access import Credentials, NotSignedIn
from threads.runtime import Runtime


def a_hash() -> str:
    return uuid.uuid4().hex * 2


async def logged_in(runtime: Runtime) -> tuple[str, Credentials]:
    user_id = await create_user(runtime.deps.db, f"{uuid.uuid4().hex[:10]}@example.com")
    token = a_hash()
    await runtime.users.add_token(token, user_id, datetime.now(UTC) + timedelta(days=1))
    return user_id, Credentials(login_token_hash=token)


async def with_api_key(runtime: Runtime, user_id: str) -> str:
    """A personal API key of the user made; its hash."""
    key = a_hash()
    await runtime.users.api_keys.create(user_id, "script", key, "tl_test")
    return key


async def anonymous(runtime: Runtime) -> tuple[str, Credentials]:
    token = a_hash()
    await runtime.users.anonymous.issue(token, timedelta(hours=1))
    return token, Credentials(anon_token_hash=token)


async def change_session(runtime: Runtime, session_id: str, **values: Any) -> None:
    async with runtime.deps.db.sessions.begin() as s:
        await s.execute(update(ChatSession).where(ChatSession.id == session_id).values(**values))


async def test_the_owner_gets_the_session_as_stored(runtime: Runtime) -> None:
    user_id, user = await logged_in(runtime)
    token, anon = await anonymous(runtime)
    mine = await runtime.deps.sessions.create(Owner(user_id=user_id), memory=True)
    theirs = await runtime.deps.sessions.create(Owner(anon_token_hash=token))
    for credentials, session in ((user, mine), (anon, theirs)):
        got = await runtime.threads.authorize(credentials, session.id)
        assert got.id == session.id
        assert (got.user_id, got.anon_token_hash) == (session.user_id, session.anon_token_hash)
        assert got.memory_enabled == session.memory_enabled
        assert got.created_at == session.created_at


async def test_anothers_missing_malformed_and_expired_sessions_answer_alike(
    runtime: Runtime,
) -> None:
    user_id, user = await logged_in(runtime)
    _, other = await logged_in(runtime)
    mine = await runtime.deps.sessions.create(Owner(user_id=user_id))
    expired = await runtime.deps.sessions.create(Owner(user_id=user_id))
    await change_session(runtime, expired.id, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    for credentials, session_id in (
        (other, mine.id),  # another user's
        (user, str(uuid.uuid4())),  # nobody's
        (user, "not-a-session-id"),
        (user, expired.id),
    ):
        with pytest.raises(SessionNotFound):
            await runtime.threads.authorize(credentials, session_id)


async def test_tokens_that_prove_nobody_are_not_signed_in_before_anything_else(
    runtime: Runtime,
) -> None:
    user_id, user = await logged_in(runtime)
    session = await runtime.deps.sessions.create(Owner(user_id=user_id))
    assert user.login_token_hash is not None
    await runtime.users.revoke_token(user.login_token_hash)
    made_up = Credentials(anon_token_hash=a_hash())  # never issued
    for credentials in (user, made_up, Credentials()):
        for session_id in (session.id, "not-a-session-id"):
            with pytest.raises(NotSignedIn):
                await runtime.threads.authorize(credentials, session_id)


async def test_an_anonymous_token_stops_at_its_session_once_a_user_owns_it(
    runtime: Runtime,
) -> None:
    user_id, _ = await logged_in(runtime)
    token, anon = await anonymous(runtime)
    session = await runtime.deps.sessions.create(Owner(anon_token_hash=token))
    assert (await runtime.threads.authorize(anon, session.id)).id == session.id
    await change_session(runtime, session.id, user_id=user_id)  # claimed by a user
    with pytest.raises(SessionNotFound):
        await runtime.threads.authorize(anon, session.id)


async def test_a_personal_api_key_proves_its_user(runtime: Runtime) -> None:
    user_id, _ = await logged_in(runtime)
    key = await with_api_key(runtime, user_id)
    session = await runtime.deps.sessions.create(Owner(user_id=user_id))
    got = await runtime.threads.authorize(Credentials(api_key_hash=key), session.id)
    assert got.id == session.id


async def key_last_used(runtime: Runtime, key_hash: str) -> datetime | None:
    async with runtime.deps.db.sessions() as s:
        used: datetime | None = await s.scalar(
            select(ApiKey.last_used_at).where(ApiKey.key_hash == key_hash)
        )
        return used


async def test_an_agent_api_call_reads_its_key_and_thread_together(runtime: Runtime) -> None:
    """`user_only` (the Agent Server API): the key's user's own threads only; the
    key's use is recorded as `user_for_key` records it."""
    user_id, user = await logged_in(runtime)
    key = await with_api_key(runtime, user_id)
    by_key = Credentials(api_key_hash=key)
    mine = await runtime.deps.sessions.create(Owner(user_id=user_id))
    got = await runtime.threads.authorize(by_key, mine.id, user_only=True)
    assert got.id == mine.id
    assert await key_last_used(runtime, key) is not None

    other_id, other = await logged_in(runtime)
    theirs = await runtime.deps.sessions.create(Owner(user_id=other_id))
    token, anon = await anonymous(runtime)
    anons = await runtime.deps.sessions.create(Owner(anon_token_hash=token))
    for session_id in (theirs.id, str(uuid.uuid4()), "not-a-session-id"):
        with pytest.raises(SessionNotFound):
            await runtime.threads.authorize(by_key, session_id, user_only=True)
    # A login token proves its user first; a key is not looked at then.
    both = Credentials(login_token_hash=other.login_token_hash, api_key_hash=key)
    assert (await runtime.threads.authorize(both, theirs.id, user_only=True)).id == theirs.id
    with pytest.raises(SessionNotFound):
        await runtime.threads.authorize(both, mine.id, user_only=True)
    # An anonymous owner is nobody here, even at its own session.
    assert (await runtime.threads.authorize(anon, anons.id)).id == anons.id
    with pytest.raises(NotSignedIn):
        await runtime.threads.authorize(anon, anons.id, user_only=True)
    # A revoked key, or one of an account switched off, proves nobody.
    async with runtime.deps.db.sessions.begin() as s:
        await s.execute(update(User).where(User.id == user_id).values(is_active=False))
    with pytest.raises(NotSignedIn):
        await runtime.threads.authorize(by_key, mine.id, user_only=True)
    async with runtime.deps.db.sessions.begin() as s:
        await s.execute(update(User).where(User.id == user_id).values(is_active=True))
    assert (await runtime.threads.authorize(by_key, mine.id, user_only=True)).id == mine.id
    [live] = await runtime.users.api_keys.list(user_id)
    await runtime.users.api_keys.revoke(user_id, live.id)
    with pytest.raises(NotSignedIn):
        await runtime.threads.authorize(by_key, mine.id, user_only=True)
    assert user.login_token_hash is not None  # the login itself still holds
    assert (await runtime.threads.authorize(user, mine.id, user_only=True)).id == mine.id


async def test_a_keys_use_is_recorded_at_most_every_minute(runtime: Runtime) -> None:
    user_id, _ = await logged_in(runtime)
    key = await with_api_key(runtime, user_id)
    mine = await runtime.deps.sessions.create(Owner(user_id=user_id))
    await runtime.threads.authorize(Credentials(api_key_hash=key), mine.id)
    first = await key_last_used(runtime, key)
    await runtime.threads.authorize(Credentials(api_key_hash=key), mine.id)
    assert await key_last_used(runtime, key) == first  # within the minute: not written
    long_ago = datetime.now(UTC) - USE_RECORDED_EVERY - timedelta(seconds=1)
    async with runtime.deps.db.sessions.begin() as s:
        await s.execute(update(ApiKey).where(ApiKey.key_hash == key).values(last_used_at=long_ago))
    await runtime.threads.authorize(Credentials(api_key_hash=key), mine.id)
    recorded = await key_last_used(runtime, key)
    assert recorded is not None and recorded > long_ago + USE_RECORDED_EVERY


async def test_a_live_anonymous_owner_slides_at_most_every_minute(runtime: Runtime) -> None:
    token, anon = await anonymous(runtime)
    session = await runtime.deps.sessions.create(Owner(anon_token_hash=token))

    async def owner_row() -> AnonymousOwner:
        async with runtime.deps.db.sessions() as s:
            row = await s.get(AnonymousOwner, token)
            assert row is not None
            return row

    issued = await owner_row()
    await runtime.threads.authorize(anon, session.id)
    assert (await owner_row()).expires_at == issued.expires_at  # seen just now: not stale
    window = issued.expires_at - issued.last_seen_at
    long_ago = issued.last_seen_at - SLIDE_EVERY - timedelta(seconds=1)
    async with runtime.deps.db.sessions.begin() as s:
        await s.execute(
            update(AnonymousOwner)
            .where(AnonymousOwner.token_hash == token)
            .values(last_seen_at=long_ago, expires_at=long_ago + window)
        )
    await runtime.threads.authorize(anon, session.id)
    slid = await owner_row()
    assert slid.last_seen_at > long_ago + SLIDE_EVERY
    assert slid.expires_at - slid.last_seen_at == window  # the window it was issued with
