"""Who a login token or an API key proves: looked up in one statement each
(memory/users.py, memory/api_keys.py), with the rules the ORM query had."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.auth import hash_password, new_token, token_hash
from memory.db import Database
from memory.models import ApiKey, User
from memory.users import UserStore


async def a_user(users: UserStore, email: str) -> User:
    return await users.create(email, hash_password("x" * 12), "Ada")


async def test_a_live_token_proves_its_user_as_the_orm_loads_it(db: Database) -> None:
    users = UserStore(db)
    ada = await a_user(users, "ada@example.com")
    await a_user(users, "grace@example.com")  # another user's row is never taken
    token = token_hash(new_token())
    await users.add_token(token, ada.id, datetime.now(UTC) + timedelta(hours=1))

    found = await users.user_for_token(token)

    async with db.sessions() as s:
        stored = (await s.execute(select(User).where(User.id == ada.id))).scalar_one()
    assert found is not None
    columns = [column.key for column in User.__table__.columns]
    assert {c: getattr(found, c) for c in columns} == {c: getattr(stored, c) for c in columns}
    assert await users.user_for_token(token_hash(new_token())) is None  # never issued


async def test_an_expired_or_revoked_token_proves_no_one(db: Database) -> None:
    users = UserStore(db)
    ada = await a_user(users, "ada@example.com")
    expired, revoked = token_hash(new_token()), token_hash(new_token())
    await users.add_token(expired, ada.id, datetime.now(UTC) - timedelta(seconds=1))
    await users.add_token(revoked, ada.id, datetime.now(UTC) + timedelta(hours=1))
    await users.revoke_token(revoked)

    assert await users.user_for_token(expired) is None
    assert await users.user_for_token(revoked) is None


async def test_an_api_key_proves_its_active_user_until_revoked(db: Database) -> None:
    users = UserStore(db)
    ada = await a_user(users, "ada@example.com")
    key = await users.api_keys.create(ada.id, "laptop", token_hash("tl_key"), "tl_k")

    found = await users.api_keys.user_for_key(token_hash("tl_key"))
    assert found is not None and (found.id, found.email) == (ada.id, "ada@example.com")
    async with db.sessions() as s:  # its use is recorded (to the minute)
        used = await s.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key.id))
    assert used is not None

    async with db.sessions.begin() as s:
        await s.execute(update(User).where(User.id == ada.id).values(is_active=False))
    assert await users.api_keys.user_for_key(token_hash("tl_key")) is None
    async with db.sessions.begin() as s:
        await s.execute(update(User).where(User.id == ada.id).values(is_active=True))

    await users.api_keys.revoke(ada.id, key.id)
    assert await users.api_keys.user_for_key(token_hash("tl_key")) is None
