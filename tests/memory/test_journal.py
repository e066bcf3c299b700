"""The journal: idempotent on message id, strictly increasing seq, paging."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from memory.errors import InvalidInput, MessageIdConflict, SessionNotFound
from memory.journal import Journal, NewMessage
from memory.sessions import Owner, SessionStore

OWNER = Owner(anon_token_hash="a" * 64)


def user_message(content: str = "hello", message_id: str | None = None) -> NewMessage:
    return NewMessage(id=message_id or str(uuid.uuid4()), role="user", content=content)


async def test_same_id_twice_is_stored_once(sessions: SessionStore, journal: Journal) -> None:
    session = await sessions.create(OWNER)
    message = user_message()
    first, created_first = await journal.append(session.id, message)
    again, created_again = await journal.append(session.id, message)
    assert (created_first, created_again) == (True, False)
    assert again.seq == first.seq == 1
    page, _ = await journal.page(session.id)
    assert [m.id for m in page] == [message.id]
    assert (await sessions.get(session.id)).message_count == 1


async def test_concurrent_writers_get_distinct_increasing_seq(
    sessions: SessionStore, journal: Journal
) -> None:
    session = await sessions.create(OWNER)
    messages = [user_message(f"m{i}") for i in range(40)]
    # Half the messages are sent twice, concurrently, to race the idempotency check too.
    results = await asyncio.gather(
        *(journal.append(session.id, m) for m in messages + messages[:20])
    )
    by_id = {row.id: row.seq for row, _ in results}
    assert sorted(by_id.values()) == list(range(1, 41))
    assert sum(created for _, created in results) == 40
    page, has_more = await journal.page(session.id, limit=100)
    assert [m.seq for m in page] == list(range(1, 41)) and not has_more


async def test_id_used_in_another_session_is_refused(
    sessions: SessionStore, journal: Journal
) -> None:
    first, second = await sessions.create(OWNER), await sessions.create(OWNER)
    message = user_message("mine")
    await journal.append(first.id, message)
    with pytest.raises(MessageIdConflict):
        await journal.append(second.id, user_message("theirs", message.id))
    stored = await journal.get(message.id)
    assert stored is not None and (stored.session_id, stored.content) == (first.id, "mine")


async def test_paging_before_and_after(sessions: SessionStore, journal: Journal) -> None:
    session = await sessions.create(OWNER)
    for i in range(10):
        await journal.append(session.id, user_message(f"m{i}"))
    newest, more = await journal.page(session.id, limit=4)
    assert [m.seq for m in newest] == [7, 8, 9, 10] and more
    older, more = await journal.page(session.id, before_seq=7, limit=4)
    assert [m.seq for m in older] == [3, 4, 5, 6] and more
    oldest, more = await journal.page(session.id, before_seq=3, limit=4)
    assert [m.seq for m in oldest] == [1, 2] and not more
    replay, more = await journal.page(session.id, after_seq=8, limit=4)
    assert [m.seq for m in replay] == [9, 10] and not more


@pytest.mark.parametrize(
    "message",
    [
        NewMessage(id="ok-id", role="user", content="nul \x00 byte"),
        NewMessage(id="bad id with spaces", role="user", content="x"),
        NewMessage(id="", role="user", content="x"),
        NewMessage(id="ok-id", role="wizard", content="x"),
    ],
)
async def test_bad_messages_are_refused_and_nothing_is_written(
    sessions: SessionStore, journal: Journal, message: NewMessage
) -> None:
    session = await sessions.create(OWNER)
    with pytest.raises(InvalidInput):
        await journal.append(session.id, message)
    assert (await journal.page(session.id))[0] == []
    assert (await sessions.get(session.id)).message_count == 0


async def test_unknown_session(journal: Journal) -> None:
    with pytest.raises(SessionNotFound):
        await journal.append(str(uuid.uuid4()), user_message())
