"""Turns the graph must refuse: the domain error reaches the caller, nothing is written."""

from __future__ import annotations

import uuid

import pytest

from graph.turn import read_window
from memory.errors import InvalidInput, MessageIdConflict, SessionNotFound, ThreadlineError
from tests.graph.conftest import Harness, answer_of

LIMIT = 50  # a small TurnContext.max_message_chars for these tests


async def checkpoint_rows(harness: Harness, thread_id: str) -> dict[str, int]:
    counts = {}
    async with harness.db.pool.connection() as conn:
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            cur = await conn.execute(
                f"SELECT count(*) AS n FROM {table} WHERE thread_id = %s", (thread_id,)
            )
            row = await cur.fetchone()
            assert row is not None
            counts[table] = row["n"]
    return counts


NOTHING = {"checkpoints": 0, "checkpoint_writes": 0, "checkpoint_blobs": 0}


async def assert_nothing_journaled(harness: Harness, session_id: str) -> None:
    page, _ = await harness.journal.page(session_id, limit=10)
    assert page == []
    session = await harness.sessions.get(session_id)
    assert session.message_count == 0 and session.last_seq == 0
    assert session.title is None


BAD_MESSAGES = {
    "empty": "",
    "whitespace only": " \t\n\u3000 ",
    "over the size limit": "x" * (LIMIT + 1),
    "NUL byte": "hello\x00world",
}


@pytest.mark.parametrize("content", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_bad_message_is_refused_and_nothing_is_journaled(
    harness: Harness, content: str
) -> None:
    session_id = await harness.new_session()
    with pytest.raises(InvalidInput) as refused:
        await harness.ask(session_id, content, max_message_chars=LIMIT)
    assert refused.value.code == "invalid_input"
    await assert_nothing_journaled(harness, session_id)


async def test_message_at_the_size_limit_is_accepted(harness: Harness) -> None:
    session_id = await harness.new_session()
    answer = answer_of(await harness.ask(session_id, "y" * LIMIT, max_message_chars=LIMIT))
    assert "offline model" in answer
    page, _ = await harness.journal.page(session_id)
    assert [m.role for m in page] == ["user", "assistant"]


@pytest.mark.parametrize("content", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_bad_message_in_a_running_thread_changes_nothing(
    harness: Harness, content: str
) -> None:
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada")
    before_page, _ = await harness.journal.page(session_id)
    before_window = await read_window(harness.graph, harness.db.pool, session_id)

    with pytest.raises(InvalidInput):
        await harness.ask(session_id, content, max_message_chars=LIMIT)

    after_page, _ = await harness.journal.page(session_id)
    assert [(m.id, m.seq) for m in after_page] == [(m.id, m.seq) for m in before_page]
    assert (await harness.sessions.get(session_id)).message_count == 2
    after_window = await read_window(harness.graph, harness.db.pool, session_id)
    assert [m.id for m in after_window["messages"]] == [m.id for m in before_window["messages"]]
    # and the thread carries on
    assert "Ada" in answer_of(await harness.ask(session_id, "what is my name?"))
    page, _ = await harness.journal.page(session_id)
    assert [m.seq for m in page] == [1, 2, 3, 4]


@pytest.mark.parametrize("session_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["uuid", "garbage"])
async def test_unknown_session_is_not_found_and_nothing_is_journaled(
    harness: Harness, session_id: str
) -> None:
    query_id = str(uuid.uuid4())
    with pytest.raises(SessionNotFound) as missing:
        await harness.ask(session_id, "hello?", query_id=query_id)
    assert missing.value.code == "not_found"
    assert await harness.journal.get(query_id) is None
    page, _ = await harness.journal.page(session_id)
    assert page == []
    with pytest.raises(SessionNotFound):
        await harness.sessions.get(session_id)


@pytest.mark.parametrize("query_id", ["has spaces", "x" * 129, "-leading-dash", "nul\x00"])
async def test_bad_query_id_is_refused_and_nothing_is_journaled(
    harness: Harness, query_id: str
) -> None:
    session_id = await harness.new_session()
    with pytest.raises(InvalidInput):
        await harness.ask(session_id, "hello", query_id=query_id)
    await assert_nothing_journaled(harness, session_id)


async def test_query_id_of_another_session_is_refused_never_overwritten(
    harness: Harness,
) -> None:
    first, second = await harness.new_session(), await harness.new_session()
    query_id = str(uuid.uuid4())
    await harness.ask(first, "mine", query_id=query_id)
    with pytest.raises(MessageIdConflict):
        await harness.ask(second, "stolen", query_id=query_id)
    await assert_nothing_journaled(harness, second)
    row = await harness.journal.get(query_id)
    assert row is not None and row.session_id == first and row.content == "mine"


# A refused turn leaves no checkpoint either: LangGraph persists one even for a
# run that raises, so run_turn refuses bad turns before the graph starts.


@pytest.mark.parametrize("content", BAD_MESSAGES.values(), ids=BAD_MESSAGES.keys())
async def test_refused_message_leaves_no_checkpoint(harness: Harness, content: str) -> None:
    session_id = await harness.new_session()
    with pytest.raises(InvalidInput):
        await harness.ask(session_id, content, max_message_chars=LIMIT)
    assert await checkpoint_rows(harness, session_id) == NOTHING


async def test_refused_message_leaves_the_threads_checkpoints_alone(harness: Harness) -> None:
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada")
    before = await checkpoint_rows(harness, session_id)
    with pytest.raises(InvalidInput):
        await harness.ask(session_id, "")
    assert await checkpoint_rows(harness, session_id) == before


async def test_unknown_session_leaves_no_checkpoint(harness: Harness) -> None:
    session_id = str(uuid.uuid4())
    with pytest.raises(SessionNotFound):
        await harness.ask(session_id, "hello?")
    assert await checkpoint_rows(harness, session_id) == NOTHING


async def test_errors_propagate_unwrapped(harness: Harness) -> None:
    """LangGraph re-raises a node's exception as is: callers can map `code`."""
    session_id = await harness.new_session()
    with pytest.raises(ThreadlineError) as refused:
        await harness.ask(session_id, "")
    assert type(refused.value) is InvalidInput
