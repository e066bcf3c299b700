"""One rule for a session that gains messages, whoever writes them (the
journal's append, an import, a merge): seqs, counts, activity and expiry."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, update

from memory.db import Database
from memory.import_reading import read_sessions
from memory.imports import import_sessions
from memory.journal import Journal, NewMessage
from memory.maintenance import merge_sessions
from memory.models import ChatSession
from memory.sessions import Owner, SessionStore
from tests.memory.files import export_file
from tests.support.users import create_user

TTL = timedelta(hours=24)  # the fixtures' anonymous TTL
ANON = Owner(anon_token_hash="d" * 64)

Books = tuple[int, int, bool, bool, timedelta | bool | None]


async def make_idle(db: Database, session_id: str, *, anonymous: bool) -> None:
    """Two hours idle; an anonymous session has one hour of life left."""
    expires = func.now() + timedelta(hours=1) if anonymous else ChatSession.expires_at
    async with db.sessions.begin() as s:
        await s.execute(
            update(ChatSession)
            .where(ChatSession.id == session_id)
            .values(
                last_activity_at=func.now() - timedelta(hours=2),
                updated_at=func.now() - timedelta(hours=2),
                expires_at=expires,
            )
        )


def books(before: ChatSession, after: ChatSession) -> Books:
    """What the rule decides: the counts, whether the session became active and
    changed, and its expiry (anonymous: how long after that activity; others:
    whether it was kept)."""
    if after.user_id is None:
        assert after.expires_at is not None
        expiry: timedelta | bool = after.expires_at - after.last_activity_at
    else:
        expiry = after.expires_at == before.expires_at
    return (
        after.message_count,
        after.last_seq,
        after.last_activity_at > before.last_activity_at,
        after.updated_at > before.updated_at,
        expiry,
    )


@pytest.mark.parametrize("anonymous", [True, False], ids=["anonymous", "user"])
async def test_append_import_and_merge_book_messages_alike(
    db: Database, journal: Journal, anonymous: bool
) -> None:
    store = SessionStore(db, anon_ttl=TTL, retention=timedelta(days=30))
    owner = ANON if anonymous else Owner(user_id=await create_user(db, "books@example.com"))
    appended, imported, merged, donor = [await store.create(owner) for _ in range(4)]
    for session in (appended, imported, merged):
        await make_idle(db, session.id, anonymous=anonymous)
    before = {s.id: await store.get(s.id) for s in (appended, imported, merged)}

    for session in (appended, donor):
        for role, text in [("user", "one"), ("assistant", "two")]:
            await journal.append(session.id, NewMessage(str(uuid.uuid4()), role, text))
    document = export_file(imported.id, [("user", "one"), ("assistant", "two")])
    await import_sessions(db, owner, read_sessions(io.BytesIO(document)), anon_ttl=TTL)
    await merge_sessions(store, merged.id, donor.id, owner)

    after = [books(before[s.id], await store.get(s.id)) for s in (appended, imported, merged)]
    # Anonymous: the expiry slides to a TTL after now. Others keep theirs (the
    # retention gave them one, so keeping it is visible).
    assert after[0] == (2, 2, True, True, TTL if anonymous else True)
    assert after[1] == after[0], "import"
    assert after[2] == after[0], "merge"


async def test_importing_into_an_anonymous_session_keeps_it_alive(
    db: Database, sessions: SessionStore
) -> None:
    session = await sessions.create(ANON)
    await make_idle(db, session.id, anonymous=True)
    idle = await sessions.get(session.id)
    newer = await sessions.create(ANON)
    document = export_file(session.id, [("user", "hello again")])
    await import_sessions(db, ANON, read_sessions(io.BytesIO(document)), anon_ttl=TTL)
    active = await sessions.get(session.id)
    assert active.last_activity_at > idle.last_activity_at
    assert idle.expires_at is not None and active.expires_at is not None
    assert active.expires_at - active.last_activity_at == TTL > active.expires_at - idle.expires_at
    listed, _ = await sessions.list(ANON)
    assert [s.id for s in listed] == [session.id, newer.id]  # newest activity first
    # The same file again adds nothing, so nothing happened in the session.
    await import_sessions(db, ANON, read_sessions(io.BytesIO(document)), anon_ttl=TTL)
    again = await sessions.get(session.id)
    assert (again.last_activity_at, again.message_count) == (active.last_activity_at, 1)


async def test_import_uses_the_one_ownership_rule(db: Database, sessions: SessionStore) -> None:
    """A browser that chatted anonymously, then logged in, owns both kinds of
    session everywhere: in an import too."""
    session = await sessions.create(ANON)
    both = Owner(user_id=await create_user(db, "both@example.com"), anon_token_hash="d" * 64)
    document = export_file(session.id, [("user", "from my laptop")])
    report = await import_sessions(db, both, read_sessions(io.BytesIO(document)), anon_ttl=TTL)
    assert (report.sessions_extended, report.messages_added) == (1, 1)
