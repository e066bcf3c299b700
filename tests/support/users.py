"""Users for storage-level tests, written straight to the table."""

from __future__ import annotations

from memory.db import Database
from memory.models import User


async def create_user(db: Database, email: str) -> str:
    async with db.sessions.begin() as s:
        user = User(email=email, password_hash="not-a-real-hash")
        s.add(user)
        await s.flush()
        return user.id
