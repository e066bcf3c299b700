"""Keeping sessions tidy for months: merging two threads, and removing expired
ones (journal, checkpoints, and optionally the memories learned from them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from memory.checkpoints import delete_thread
from memory.db import Database
from memory.errors import InvalidInput
from memory.journal import grow_session
from memory.models import ChatMessage, ChatSession, Memory, User
from memory.sessions import Owner, SessionStore

# Renumbering by time: negative seqs first, so the unique (session_id, seq)
# index never sees two rows with one number mid-update.
_RENUMBER = text(
    """
    WITH ordered AS (
        SELECT id, row_number() OVER (ORDER BY created_at, -seq, id) AS n
          FROM chat_messages WHERE session_id = :target)
    UPDATE chat_messages m SET seq = ordered.n FROM ordered WHERE m.id = ordered.id
    """
)


async def merge_sessions(
    store: SessionStore, target_id: str, other_id: str, owner: Owner | None
) -> ChatSession:
    """Move every message of `other` into `target`, ordered by time, and remove `other`.

    The target's checkpoints are dropped: its window is rebuilt from the merged
    journal on the next turn. Memories learned from `other` now point at the
    target; its conversation summary is dropped and the target's is redone.
    The target gains the messages as any writer's session does (`grow_session`).
    """
    target = await store.get(target_id, owner)
    other = await store.get(other_id, owner)
    if target.id == other.id:
        raise InvalidInput("cannot merge a session with itself")
    if not Owner(user_id=target.user_id, anon_token_hash=target.anon_token_hash).owns(other):
        raise InvalidInput("only sessions of the same owner can be merged")
    async with store.db.sessions.begin() as s:
        moved = await _move_messages(s, target.id, other.id)
        await _move_memories(s, target.id, other.id)
        await s.execute(delete(ChatSession).where(ChatSession.id == other.id))
        await grow_session(s, target.id, moved, anon_ttl=store.anon_ttl)
        await s.execute(
            update(ChatSession)
            .where(ChatSession.id == target.id)
            .values(
                memory_saved_seq=0,  # the merged thread's summary is owed again
                title=func.coalesce(ChatSession.title, other.title),
            )
        )
    await delete_thread(store.db.pool, other.id)
    await delete_thread(store.db.pool, target.id)
    return await store.get(target.id, owner)


async def _move_messages(s: AsyncSession, target_id: str, other_id: str) -> int:
    """Renumber both sessions' messages into the target by time; returns how many moved."""
    locked = await s.execute(
        select(ChatSession.id, ChatSession.last_seq)
        .where(ChatSession.id.in_(sorted([target_id, other_id])))
        .order_by(ChatSession.id)  # one lock order: two merges of one pair never deadlock
        .with_for_update()
    )
    offset = {row.id: row.last_seq for row in locked.all()}[target_id]
    # Counted under the row locks: every writer must lock the session row first.
    moved = await s.scalar(select(func.count()).where(ChatMessage.session_id == other_id))
    await s.execute(
        update(ChatMessage).where(ChatMessage.session_id == target_id).values(seq=-ChatMessage.seq)
    )
    await s.execute(
        update(ChatMessage)
        .where(ChatMessage.session_id == other_id)
        .values(session_id=target_id, seq=-(ChatMessage.seq + offset))
    )
    await s.execute(_RENUMBER, {"target": target_id})
    return moved or 0


async def _move_memories(s: AsyncSession, target_id: str, other_id: str) -> None:
    await s.execute(
        delete(Memory).where(Memory.source_session_id == other_id, Memory.kind == "summary")
    )
    await s.execute(
        update(Memory)
        .where(Memory.source_session_id == other_id)
        .values(source_session_id=target_id)
    )


@dataclass
class Expired:
    id: str
    anonymous: bool
    last_activity_at: str
    forget: bool = False  # its account's retention: the memories learned from it go too


# A user session idle longer than its account's own retention (users.retention_days).
_PAST_ACCOUNT_RETENTION = (
    select(User.id)
    .where(
        User.id == ChatSession.user_id,
        User.retention_days.is_not(None),
        ChatSession.last_activity_at
        < func.now() - func.make_interval(0, 0, 0, User.retention_days),
    )
    .exists()
)


def expired_filter(retention: timedelta | None) -> Any:
    """Anonymous sessions past their expiry; others idle longer than the server's
    retention or their account's."""
    anonymous = and_(ChatSession.expires_at.is_not(None), ChatSession.expires_at <= func.now())
    if retention is None:
        return or_(anonymous, _PAST_ACCOUNT_RETENTION)
    idle = and_(
        ChatSession.user_id.is_not(None),
        ChatSession.last_activity_at < func.now() - retention,
    )
    return or_(anonymous, idle, _PAST_ACCOUNT_RETENTION)


async def find_expired(
    db: Database, retention: timedelta | None, limit: int = 1000, owner: Owner | None = None
) -> list[Expired]:
    """Expired sessions, oldest activity first; only `owner`'s when given."""
    query = (
        select(
            ChatSession.id,
            ChatSession.user_id,
            ChatSession.last_activity_at,
            _PAST_ACCOUNT_RETENTION.label("forget"),
        )
        .where(expired_filter(retention))
        .order_by(ChatSession.last_activity_at)
        .limit(limit)
    )
    if owner is not None:
        query = owner.filter(query)
    async with db.sessions() as s:
        rows = (await s.execute(query)).all()
    return [
        Expired(r.id, r.user_id is None, r.last_activity_at.isoformat(), bool(r.forget))
        for r in rows
    ]
