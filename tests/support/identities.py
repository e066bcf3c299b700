"""Owners and messages for server tests, written straight into the server's database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.auth import hash_password, new_token, token_hash
from memory.anonymous import AnonymousOwners
from memory.db import open_database
from memory.journal import Journal, NewMessage
from memory.sessions import Owner, SessionStore
from memory.users import UserStore


async def anonymous_session(database_url: str) -> tuple[str, dict[str, str]]:
    """A new anonymous session and the headers that prove ownership of it: its token
    is registered as the server registers the ones it issues (a token it did not
    issue proves nothing)."""
    token = new_token()
    session_id = await _create_session(database_url, Owner(anon_token_hash=token_hash(token)))
    db = await open_database(database_url, pool_size=2)
    try:
        await AnonymousOwners(db).issue(token_hash(token), timedelta(hours=24))
    finally:
        await db.close()
    return session_id, {"X-Anon-Token": token}


async def user_session(database_url: str) -> tuple[str, dict[str, str]]:
    """A new user, one session of theirs, and their bearer header."""
    token = new_token()
    db = await open_database(database_url, pool_size=2)
    try:
        users = UserStore(db)
        user = await users.create(
            f"{uuid.uuid4().hex[:12]}@example.com", hash_password("x" * 12), None
        )
        await users.add_token(token_hash(token), user.id, datetime.now(UTC) + timedelta(days=1))
    finally:
        await db.close()
    session_id = await _create_session(database_url, Owner(user_id=user.id))
    return session_id, {"Authorization": f"Bearer {token}"}


async def _create_session(database_url: str, owner: Owner) -> str:
    db = await open_database(database_url, pool_size=2)
    try:
        store = SessionStore(db, anon_ttl=timedelta(hours=24))
        return (await store.create(owner)).id
    finally:
        await db.close()


async def seed_messages(database_url: str, session_id: str, contents: list[str]) -> None:
    """Journal messages into a session, alternating user and assistant."""
    db = await open_database(database_url, pool_size=2)
    try:
        journal = Journal(db, anon_ttl=timedelta(hours=24))
        for i, content in enumerate(contents):
            role = "user" if i % 2 == 0 else "assistant"
            await journal.append(session_id, NewMessage(str(uuid.uuid4()), role, content))
    finally:
        await db.close()
