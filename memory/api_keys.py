"""Personal API keys: what a program shows as `x-api-key` instead of a login.

Only a key's SHA-256 is stored, with its first characters to tell keys apart
in a list; the key itself is shown once, when made. A key lives until revoked
(or its account is deleted); `last_used_at` is kept to the minute.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from memory.db import Database
from memory.errors import InvalidInput, ThreadlineError
from memory.journal import check_text
from memory.models import ApiKey, User, is_made_id
from memory.rights import read_rights

MAX_KEYS = 50  # live keys per user
USE_RECORDED_EVERY = timedelta(minutes=1)


class ApiKeyNotFound(ThreadlineError):
    """No such key, or not the caller's: both answer the same."""

    code = "not_found"


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, user_id: str, name: str, key_hash: str, prefix: str) -> ApiKey:
        name = " ".join(name.split())
        if not 1 <= len(name) <= 100:
            raise InvalidInput("a key's name is 1 to 100 characters")
        check_text(name, what="name")
        async with self.db.sessions.begin() as s:
            live = await s.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            )
            if (live or 0) >= MAX_KEYS:
                raise InvalidInput(f"at most {MAX_KEYS} keys; revoke one first")
            key = ApiKey(user_id=user_id, name=name, key_hash=key_hash, prefix=prefix)
            s.add(key)
            await s.flush()
            await s.refresh(key)
            return key

    async def list(self, user_id: str) -> builtins.list[ApiKey]:
        """The user's live keys, newest first."""
        async with self.db.sessions() as s:
            rows = await s.scalars(
                select(ApiKey)
                .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
                .order_by(ApiKey.created_at.desc())
            )
            return list(rows.all())

    async def revoke(self, user_id: str, key_id: str) -> None:
        if not is_made_id(key_id):
            raise ApiKeyNotFound("no such API key")
        async with self.db.sessions.begin() as s:
            done = await s.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    ApiKey.user_id == user_id,
                    ApiKey.revoked_at.is_(None),
                )
                .values(revoked_at=func.now())
            )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise ApiKeyNotFound("no such API key")

    async def user_for_key(self, key_hash: str) -> User | None:
        """The active user a live key belongs to (and the key's use, to the minute);
        the rule is memory/rights.py's, which reads it beside a thread too."""
        rights = await read_rights(
            self.db, None, login_token_hash=None, anon_token_hash=None, api_key_hash=key_hash
        )
        if rights.key_id is not None:
            await self.record_use(rights.key_id, rights.key_last_used_at)
        return rights.user

    async def record_use(self, key_id: str, last_used_at: datetime | None) -> None:
        """Record a key's use, at most once every USE_RECORDED_EVERY."""
        if last_used_at is None or datetime.now(UTC) - last_used_at > USE_RECORDED_EVERY:
            async with self.db.sessions.begin() as s:
                await s.execute(
                    update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=func.now())
                )
