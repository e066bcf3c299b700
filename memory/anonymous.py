"""Anonymous owners: the tokens the server issued to visitors who did not log in.

Only the SHA-256 of a token is stored. A token that is not here (made up by a
client, planted in a browser, or the hash of a public string) or that expired
proves nothing: it is never adopted.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, delete, exists, func, select, update

from memory.db import Database
from memory.models import AnonymousOwner, ChatSession

# Expired owners removed each time a new one is issued: keeps the table bounded.
PRUNE_BATCH = 100


def _live(token_hash: str) -> tuple[ColumnElement[bool], ...]:
    return (AnonymousOwner.token_hash == token_hash, AnonymousOwner.expires_at > func.now())


def _sessions_of(token_hash: str) -> tuple[ColumnElement[bool], ...]:
    return (ChatSession.user_id.is_(None), ChatSession.anon_token_hash == token_hash)


class AnonymousOwners:
    """Issue, check (and slide), and end anonymous owners; each call one unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def issue(self, token_hash: str, ttl: timedelta) -> None:
        """Register a token the server just made; it lives `ttl` past its last use."""
        expired = (
            select(AnonymousOwner.token_hash)
            .where(AnonymousOwner.expires_at <= func.now())
            .order_by(AnonymousOwner.expires_at)
            .limit(PRUNE_BATCH)
        )
        async with self.db.sessions.begin() as s:
            await s.execute(delete(AnonymousOwner).where(AnonymousOwner.token_hash.in_(expired)))
            s.add(AnonymousOwner(token_hash=token_hash, expires_at=func.now() + ttl))

    async def slide(self, token_hash: str) -> None:
        """Move a live owner's expiry to now plus the window it was issued with
        (when memory/rights.py finds it due: seen over SLIDE_EVERY ago)."""
        async with self.db.sessions.begin() as s:
            await s.execute(
                update(AnonymousOwner)
                .where(*_live(token_hash))
                .values(
                    last_seen_at=func.now(),
                    expires_at=func.now()
                    + (AnonymousOwner.expires_at - AnonymousOwner.last_seen_at),
                )
            )

    async def end(self, token_hash: str) -> list[str]:
        """The token proves nothing from now on. Its sessions stay until they expire
        as anonymous sessions do (nobody can reach them meanwhile); their ids are
        returned so that sockets watching them check their rights again."""
        async with self.db.sessions.begin() as s:
            await s.execute(delete(AnonymousOwner).where(AnonymousOwner.token_hash == token_hash))
            held = await s.scalars(select(ChatSession.id).where(*_sessions_of(token_hash)))
            return list(held.all())

    async def end_if_empty(self, token_hash: str) -> bool:
        """End the owner if it holds no live session any more (say, after a claim)."""
        holds = exists().where(
            *_sessions_of(token_hash),
            (ChatSession.expires_at.is_(None)) | (ChatSession.expires_at > func.now()),
        )
        async with self.db.sessions.begin() as s:
            ended = await s.execute(
                delete(AnonymousOwner)
                .where(AnonymousOwner.token_hash == token_hash, ~holds)
                .returning(AnonymousOwner.token_hash)
            )
            return ended.first() is not None
