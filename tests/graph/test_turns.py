"""Turns of the supervisor graph: events, journal, bounded window, self-repair."""

from __future__ import annotations

import uuid

import pytest

from graph.builder import build_graph
from graph.nodes import answer_id_for
from graph.turn import read_window
from memory.db import open_database
from tests.graph.conftest import Harness, answer_of


async def test_a_turn_streams_its_events_in_order(harness: Harness) -> None:
    session_id = await harness.new_session()
    events = await harness.ask(session_id, "hello there")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "ack"  # journaled and acknowledged before the graph runs
    assert kinds.index("ack") < kinds.index("token") < kinds.index("message")
    nodes = [(e["node"], e["status"]) for e in events if e["type"] == "progress"]
    assert nodes == [
        (node, status)
        for node in ("initialize", "planning", "execution", "response")
        for status in ("started", "finished")
    ]
    tokens = "".join(e["content"] for e in events if e["type"] == "token")
    message = next(e["message"] for e in events if e["type"] == "message")
    assert tokens == message["content"] and "offline model" in tokens
    assert message["seq"] == 2 and message["token_count"] > 0
    assert message["processing_time_ms"] >= 0 and message["has_error"] is False
    assert (await harness.sessions.get(session_id)).title == "hello there"


async def test_the_first_question_names_a_session_nobody_named(harness: Harness) -> None:
    first = "  what   makes\na journal durable? " + "x" * 100
    unnamed = await harness.new_session()
    await harness.ask(unnamed, first)
    await harness.ask(unnamed, "a later question never renames it")
    title = (await harness.sessions.get(unnamed)).title
    assert title == " ".join(first[:80].split())  # its first 80 characters, spaces folded

    named = await harness.new_session()
    await harness.sessions.update(named, None, title="Chosen by its owner")
    await harness.ask(named, "hello there")
    assert (await harness.sessions.get(named)).title == "Chosen by its owner"


async def test_offline_model_recalls_from_the_window(harness: Harness) -> None:
    session_id = await harness.new_session()
    await harness.ask(session_id, "Hi, my name is Ada Lovelace and I live in Tromsø.")
    assert "Ada Lovelace" in answer_of(await harness.ask(session_id, "What is my name?"))
    assert "Tromsø" in answer_of(await harness.ask(session_id, "Where do I live?"))


async def test_recall_through_the_summary_after_the_window(harness: Harness) -> None:
    harness.window_messages = 4
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Grace Hopper")
    for i in range(12):
        await harness.ask(session_id, f"tell me about topic {i}")
    state = await read_window(harness.graph, harness.db.pool, session_id)
    assert all("Grace" not in str(m.content) for m in state["messages"])
    assert "Grace Hopper" in state["summary"]
    assert "Grace Hopper" in answer_of(await harness.ask(session_id, "what is my name?"))


async def window_is_journal_suffix(harness: Harness, session_id: str) -> None:
    state = await read_window(harness.graph, harness.db.pool, session_id)
    window_ids = [m.id for m in state["messages"]]
    tail = await harness.journal.tail(session_id, len(window_ids))
    assert window_ids == [m.id for m in tail]
    assert len(window_ids) <= harness.window_messages


async def test_window_is_a_suffix_of_the_journal_over_200_turns(harness: Harness) -> None:
    harness.window_messages = 6
    session_id = await harness.new_session()
    for i in range(200):
        await harness.ask(session_id, f"question number {i}")
        if i % 17 == 0:
            await window_is_journal_suffix(harness, session_id)
    await window_is_journal_suffix(harness, session_id)
    page, _ = await harness.journal.page(session_id, limit=1000)
    assert len(page) == 400 and [m.seq for m in page] == list(range(1, 401))


async def test_ui_and_model_agree_after_dropping_every_object(
    harness: Harness, database_url: str
) -> None:
    harness.window_messages = 6
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Alan")
    for i in range(9):
        await harness.ask(session_id, f"turn {i}")
    await harness.db.close()
    fresh_db = await open_database(database_url)  # a "restarted" process
    try:
        fresh = Harness(
            fresh_db, harness.sessions, harness.journal, build_graph(), harness.model, 6
        )
        fresh.sessions.db = fresh.journal.db = fresh_db
        journal, _ = await fresh.journal.page(session_id, limit=100)
        state = await read_window(fresh.graph, fresh_db.pool, session_id)
        window = [(m.id, m.content) for m in state["messages"]]
        assert window == [(m.id, m.content) for m in journal[-len(window) :]]
        assert "Alan" in state["summary"]
        assert "Alan" in answer_of(await fresh.ask(session_id, "what is my name?"))
    finally:
        await fresh_db.close()


async def test_resent_query_is_not_journaled_twice(harness: Harness) -> None:
    session_id = await harness.new_session()
    query_id = str(uuid.uuid4())
    await harness.ask(session_id, "once", query_id=query_id)
    await harness.ask(session_id, "once", query_id=query_id)
    page, _ = await harness.journal.page(session_id)
    assert [m.id for m in page] == [query_id, answer_id_for(query_id)]


async def test_window_rebuilt_when_checkpoint_is_behind_the_journal(harness: Harness) -> None:
    """A crash between journaling and checkpointing leaves the journal ahead."""
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Barbara")
    # Journal rows the checkpoint never saw: a turn cut off after its ack.
    from memory.journal import NewMessage

    await harness.journal.append(
        session_id, NewMessage(id=str(uuid.uuid4()), role="user", content="I live in Oslo")
    )
    answer = answer_of(await harness.ask(session_id, "where do I live?"))
    assert "Oslo" in answer
    await window_is_journal_suffix(harness, session_id)


async def test_unreadable_checkpoint_is_rebuilt_from_the_journal(harness: Harness) -> None:
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Edsger")
    async with harness.db.pool.connection() as conn:
        await conn.execute(
            "UPDATE checkpoint_blobs SET type = 'msgpack', blob = '\\xc1'::bytea"
            " WHERE thread_id = %s",
            (session_id,),
        )
    assert "Edsger" in answer_of(await harness.ask(session_id, "what is my name?"))
    await window_is_journal_suffix(harness, session_id)


@pytest.mark.parametrize("durability", ["exit", "sync"])
async def test_checkpoints_are_pruned_to_the_latest(harness: Harness, durability: str) -> None:
    """With one kept (the default), a turn leaves its checkpoint alone: with
    `exit` its put replaced the older ones, with `sync` (one per step, and their
    pending writes) the prune after the turn did."""
    harness.durability = durability
    session_id = await harness.new_session()
    for i in range(3):
        await harness.ask(session_id, f"turn {i}")
        async with harness.db.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s) AS c,"
                    " (SELECT count(*) FROM checkpoint_writes w WHERE thread_id = %(t)s"
                    "   AND checkpoint_id <> (SELECT checkpoint_id FROM checkpoints"
                    "                          WHERE thread_id = %(t)s)) AS stale_writes,"
                    " (SELECT array_agg(b.channel || '=' || b.version ORDER BY b.channel)"
                    "    FROM checkpoint_blobs b WHERE thread_id = %(t)s) AS blobs,"
                    " (SELECT array_agg(v.key || '=' || v.value ORDER BY v.key)"
                    "    FROM checkpoints c, jsonb_each_text(c.checkpoint -> 'channel_versions') v"
                    "   WHERE c.thread_id = %(t)s AND EXISTS (SELECT 1 FROM checkpoint_blobs b"
                    "     WHERE b.thread_id = %(t)s AND b.channel = v.key)) AS named",
                    {"t": session_id},
                )
            ).fetchone()
        assert rows is not None
        assert (rows["c"], rows["stale_writes"]) == (1, 0)
        assert rows["blobs"] == rows["named"]  # a blob per channel, the version it names
    assert "offline" in answer_of(await harness.ask(session_id, "still there?"))
    await window_is_journal_suffix(harness, session_id)


async def test_a_growing_thread_keeps_only_its_last_k_checkpoints(harness: Harness) -> None:
    harness.durability = "sync"  # a checkpoint per step: the most rows pruning must bound
    harness.window_messages = 4
    harness.checkpoints_keep = 3
    session_id = await harness.new_session()
    counts = []
    for i in range(12):
        await harness.ask(session_id, f"turn {i}")
        async with harness.db.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = %(t)s) AS c,"
                    " (SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %(t)s) AS b,"
                    " (SELECT count(*) FROM checkpoint_writes WHERE thread_id = %(t)s) AS w",
                    {"t": session_id},
                )
            ).fetchone()
        assert row is not None
        counts.append((row["c"], row["b"], row["w"]))
    assert {c for c, _, _ in counts[2:]} == {3}
    assert max(b for _, b, _ in counts) == max(b for _, b, _ in counts[:4])  # blobs stay bounded
    assert max(w for _, _, w in counts) == max(w for _, _, w in counts[:4])
    assert "offline" in answer_of(await harness.ask(session_id, "still answering?"))
