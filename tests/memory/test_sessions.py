"""The session store: ownership, listing with paging and search, rename, delete."""

from __future__ import annotations

import uuid

import pytest

from memory.db import Database
from memory.errors import SessionNotFound
from memory.journal import Journal, NewMessage
from memory.sessions import Owner, SessionStore
from tests.support.users import create_user

ANON = Owner(anon_token_hash="b" * 64)
STRANGER = Owner(anon_token_hash="c" * 64)


async def test_create_get_and_isolation(sessions: SessionStore) -> None:
    session = await sessions.create(ANON, title="  First   chat ")
    assert session.title == "First chat"
    assert session.expires_at is not None  # anonymous sessions expire
    assert session.memory_enabled is False  # and never learn anything long-term
    assert (await sessions.get(session.id, ANON)).id == session.id
    for owner in (STRANGER, None):
        if owner is not None:
            with pytest.raises(SessionNotFound):
                await sessions.get(session.id, owner)
    for bad in ("not-a-uuid", str(uuid.uuid4()), "'; DROP TABLE users; --"):
        with pytest.raises(SessionNotFound):
            await sessions.get(bad, ANON)


async def test_user_sessions_do_not_expire_by_default(db: Database, sessions: SessionStore) -> None:
    user_id = await create_user(db, "ada@example.com")
    session = await sessions.create(Owner(user_id=user_id))
    assert session.expires_at is None and session.memory_enabled is True


async def test_list_pages_newest_activity_first(sessions: SessionStore, journal: Journal) -> None:
    created = [await sessions.create(ANON, title=f"s{i}") for i in range(5)]
    await journal.append(created[0].id, NewMessage(id=str(uuid.uuid4()), role="user", content="hi"))
    page, cursor = await sessions.list(ANON, limit=2)
    assert page[0].id == created[0].id and cursor is not None
    seen = [s.id for s in page]
    while cursor:
        page, cursor = await sessions.list(ANON, limit=2, cursor=cursor)
        seen += [s.id for s in page]
    assert sorted(seen) == sorted(s.id for s in created) and len(seen) == 5
    assert (await sessions.list(STRANGER))[0] == []


async def test_search_any_language(sessions: SessionStore, journal: Journal) -> None:
    texts = {"ko": "서울에 살아요", "ja": "東京で働いています", "de": "Ich wohne in München"}
    ids = {}
    for lang, text in texts.items():
        session = await sessions.create(ANON)
        ids[lang] = session.id
        await journal.append(
            session.id, NewMessage(id=str(uuid.uuid4()), role="user", content=text)
        )
    for lang, query in {"ko": "서울", "ja": "東京", "de": "münchen"}.items():
        found, _ = await sessions.list(ANON, q=query)
        assert [s.id for s in found] == [ids[lang]], lang


async def test_rename_archive_delete(sessions: SessionStore, journal: Journal) -> None:
    session = await sessions.create(ANON)
    await journal.append(session.id, NewMessage(id=str(uuid.uuid4()), role="user", content="x"))
    renamed = await sessions.update(session.id, ANON, title="Renamed", archived=True)
    assert (renamed.title, renamed.archived) == ("Renamed", True)
    assert (await sessions.list(ANON))[0] == []
    assert [s.id for s in (await sessions.list(ANON, archived=True))[0]] == [session.id]
    with pytest.raises(SessionNotFound):
        await sessions.delete(session.id, STRANGER)
    await sessions.delete(session.id, ANON)
    with pytest.raises(SessionNotFound):
        await sessions.get(session.id)
    assert (await journal.page(session.id))[0] == []


def test_one_ownership_rule() -> None:
    user, anon = Owner(user_id="u1"), Owner(anon_token_hash="h")
    both = Owner(user_id="u1", anon_token_hash="h")  # chatted anonymously, then logged in
    assert user.owns_row("u1", None) and not user.owns_row("u2", None)
    assert not user.owns_row(None, "h")
    assert anon.owns_row(None, "h") and not anon.owns_row(None, "x")
    assert not anon.owns_row("u1", "h")  # once a user's, the token no longer reaches it
    assert both.owns_row("u1", None) and both.owns_row(None, "h")
