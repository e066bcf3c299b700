"""What a session owes its memory save, read in one statement (memory/owed.py):
its messages since the last save, its summary so far, and nothing at all for
an anonymous session, one with memory off, or one that is gone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from memory.db import Database
from memory.errors import SessionNotFound
from memory.journal import Journal, NewMessage
from memory.memories import MemoryStore
from memory.models import ChatSession
from memory.owed import owed_save
from memory.sessions import Owner, SessionStore
from tests.support.users import create_user


async def said(journal: Journal, session_id: str, *contents: str) -> None:
    for i, content in enumerate(contents):
        role = "user" if i % 2 == 0 else "assistant"
        await journal.append(session_id, NewMessage(str(uuid.uuid4()), role, content))


async def test_the_messages_since_the_last_save_and_the_summary_so_far(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "owed@example.com")
    session = await sessions.create(Owner(user_id=user), memory=True)
    empty = await owed_save(db, session.id)
    assert (empty.user_id, empty.memory_enabled, empty.turns, empty.summary) == (user, True, [], "")
    await said(journal, session.id, "My name is Ada.", "Hello Ada.")
    first = await owed_save(db, session.id)
    assert first.turns == [("user", "My name is Ada."), ("assistant", "Hello Ada.")]
    assert first.upto_seq == 2
    assert await MemoryStore(db).save_from_session(session.id, user, [], "Ada said hi", 2)
    await said(journal, session.id, "I live in Oslo.", "Noted.")
    second = await owed_save(db, session.id)
    assert second.turns == [("user", "I live in Oslo."), ("assistant", "Noted.")]
    assert (second.upto_seq, second.summary) == (4, "Ada said hi")
    assert (first.asked_before, second.asked_before) == ("", "My name is Ada.")  # saved before
    assert await MemoryStore(db).save_from_session(session.id, user, [], "Ada, Oslo", 4)
    done = await owed_save(db, session.id)
    assert (done.turns, done.upto_seq, done.summary) == ([], 4, "Ada, Oslo")


async def test_nothing_is_owed_without_a_user_or_with_memory_off(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "off@example.com")
    anonymous = await sessions.create(Owner(anon_token_hash="a" * 64))
    off = await sessions.create(Owner(user_id=user), memory=False)
    for session in (anonymous, off):
        await said(journal, session.id, "My name is Grace.", "Hello.")
        assert (await owed_save(db, session.id)).turns == []


async def test_a_gone_or_expired_session_is_not_found(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    with pytest.raises(SessionNotFound):
        await owed_save(db, str(uuid.uuid4()))
    user = await create_user(db, "expired@example.com")
    session = await sessions.create(Owner(user_id=user), memory=True)
    await said(journal, session.id, "My name is Grace.", "Hello.")
    async with db.sessions.begin() as s:
        await s.execute(
            update(ChatSession)
            .where(ChatSession.id == session.id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    with pytest.raises(SessionNotFound):
        await owed_save(db, session.id)
