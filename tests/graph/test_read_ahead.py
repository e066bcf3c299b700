"""The run's checkpointer (`RunSaver`): the checkpoint read begun beside the
question's INSERT (`read_ahead`), and the stock saver's rows both ways."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from graph.turn import Turn, run_turn
from memory.checkpoints import new_saver, prune_thread
from tests.graph.conftest import Harness, answer_of
from tests.support.polling import until


def latest(thread_id: str) -> dict:  # type: ignore[type-arg]
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def drop_checkpoints(harness: Harness, thread_id: str) -> None:
    async with harness.db.pool.connection() as conn:
        await conn.execute("DELETE FROM checkpoints WHERE thread_id = %s", (thread_id,))


async def test_the_run_takes_the_checkpoint_read_ahead_once(harness: Harness) -> None:
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada")
    saver = new_saver(harness.db.pool)
    await asyncio.wait([saver.read_ahead(session_id)])
    await drop_checkpoints(harness, session_id)
    # The read begun before the rows went: the run sees the checkpoint as it was.
    taken = await saver.aget_tuple(latest(session_id))
    assert taken is not None and taken.checkpoint["channel_values"]["last_seq"] == 2
    # Taken once: the next read is a read of the table as it is now.
    assert await saver.aget_tuple(latest(session_id)) is None


async def test_a_read_of_anything_else_reads_now_and_keeps_the_read_ahead(
    harness: Harness,
) -> None:
    first, second = await harness.new_session(), await harness.new_session()
    await harness.ask(first, "one")
    await harness.ask(second, "two")
    saver = new_saver(harness.db.pool)
    await asyncio.wait([saver.read_ahead(first)])
    other = await saver.aget_tuple(latest(second))
    assert other is not None and other.config["configurable"]["thread_id"] == second
    taken = await saver.aget_tuple(latest(first))
    assert taken is not None and taken.config["configurable"]["thread_id"] == first


async def test_a_discarded_read_ahead_is_not_taken(harness: Harness) -> None:
    session_id = await harness.new_session()
    await harness.ask(session_id, "hello")
    saver = new_saver(harness.db.pool)
    saver.read_ahead(session_id)
    saver.discard_read_ahead()
    await drop_checkpoints(harness, session_id)
    assert await saver.aget_tuple(latest(session_id)) is None


async def test_the_checkpoint_is_read_while_the_question_is_being_journaled(
    harness: Harness,
) -> None:
    """With the question's INSERT held up (its session row locked by another
    transaction), the turn's checkpoint SELECT has already run."""
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Grace")
    turn = Turn(session_id, None, False, {"id": str(uuid.uuid4()), "content": "what is my name?"})
    connect = psycopg.AsyncConnection.connect
    # pg_stat_activity is read from a connection of its own: inside a
    # transaction it answers from one snapshot.
    async with (
        await connect(harness.db.url) as holder,
        await connect(harness.db.url, autocommit=True) as observer,
    ):
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM chat_sessions WHERE id = %s FOR UPDATE", (session_id,)
            )
            blocked_at = (await (await holder.execute("SELECT clock_timestamp()")).fetchone())[0]  # type: ignore[index]
            events = run_turn(harness.graph, harness.db.pool, harness.context(), turn)
            first = asyncio.ensure_future(anext(events))

            async def checkpoint_read_since_block() -> bool:
                found = await observer.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                    " AND query ILIKE '%%from checkpoints%%' AND query_start > %s",
                    (blocked_at,),
                )
                row = await found.fetchone()
                return row is not None and row[0] > 0

            async def insert_waits() -> bool:
                found = await observer.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                    " AND wait_event_type = 'Lock' AND query ILIKE '%%insert into chat_messages%%'"
                )
                row = await found.fetchone()
                return row is not None and row[0] > 0

            await until(insert_waits)
            assert await checkpoint_read_since_block()
            assert not first.done()  # no ack while the question is not journaled
        ack = await first
    assert ack["type"] == "ack"
    rest = [event async for event in events]
    assert "Grace" in answer_of(rest)


async def test_the_run_saver_writes_and_reads_what_the_stock_saver_does(
    harness: Harness,
) -> None:
    """RunSaver's `aput` and its read are the library's with the (de)serialising
    moved onto the event loop: the same rows, both ways."""
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada and I live in Oslo")
    stock, ours = AsyncPostgresSaver(harness.db.pool), new_saver(harness.db.pool)
    read = await stock.aget_tuple(latest(session_id))
    assert read is not None and read == await ours.aget_tuple(latest(session_id))
    # pending writes (a run cut off between steps leaves some), read alike
    await stock.aput_writes(
        read.config, [("summary", "a summary"), ("steps", 3)], task_id=str(uuid.uuid4())
    )
    with_writes = await stock.aget_tuple(latest(session_id))
    assert with_writes is not None and len(with_writes.pending_writes or []) == 2
    assert with_writes == await ours.aget_tuple(latest(session_id))
    # a checkpoint written by ours reads back the same through the stock saver
    checkpoint = {**read.checkpoint, "id": str(uuid6(clock_seq=-2))}
    versions = dict(read.checkpoint["channel_versions"])
    written = await ours.aput(read.config, checkpoint, read.metadata, versions)  # type: ignore[arg-type]
    again = await stock.aget_tuple(written)
    assert again is not None
    assert again.checkpoint["channel_values"] == read.checkpoint["channel_values"]
    assert again.parent_config is not None
    assert again.parent_config["configurable"]["checkpoint_id"] == read.checkpoint["id"]


async def stored_rows(harness: Harness, thread_id: str) -> tuple[set, list]:  # type: ignore[type-arg]
    """A thread's blob rows and checkpoint rows, without the thread's id."""
    async with harness.db.pool.connection() as conn:
        blobs = await conn.execute(
            "SELECT checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs"
            " WHERE thread_id = %s",
            (thread_id,),
        )
        found = {tuple(row.values()) for row in await blobs.fetchall()}
        checkpoints = await conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata"
            " FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_id",
            (thread_id,),
        )
        return found, [dict(row) for row in await checkpoints.fetchall()]


async def test_the_run_saver_writes_the_rows_the_stock_saver_writes(harness: Harness) -> None:
    """`aput` writes a checkpoint and its blobs in one statement: the same rows as
    the stock saver's upserts, for a checkpoint with blobs and one without, and
    a second write of the same checkpoint updates it as the stock one does."""
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada and I live in Oslo")
    read = await AsyncPostgresSaver(harness.db.pool).aget_tuple(latest(session_id))
    assert read is not None
    checkpoint = {**read.checkpoint, "id": str(uuid6(clock_seq=-2))}
    versions = dict(read.checkpoint["channel_versions"])
    # and a checkpoint with no new blobs (no channel changed since its parent)
    quiet = {**checkpoint, "id": str(uuid6(clock_seq=-2))}
    stock_thread, our_thread = str(uuid.uuid4()), str(uuid.uuid4())
    stock, ours = AsyncPostgresSaver(harness.db.pool), new_saver(harness.db.pool)
    for saver, thread_id in ((stock, stock_thread), (ours, our_thread)):
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        first = await saver.aput(config, checkpoint, read.metadata, versions)  # type: ignore[arg-type]
        await saver.aput(first, quiet, read.metadata, {})  # type: ignore[arg-type]
        # the same checkpoint again, with other metadata: an update, not a new row
        await saver.aput(first, quiet, {**read.metadata, "step": 99}, {})  # type: ignore[arg-type]
    stock_blobs, stock_checkpoints = await stored_rows(harness, stock_thread)
    our_blobs, our_checkpoints = await stored_rows(harness, our_thread)
    assert len(stock_blobs) >= 2 and our_blobs == stock_blobs
    assert len(stock_checkpoints) == 2 and our_checkpoints == stock_checkpoints
    assert our_checkpoints[1]["metadata"]["step"] == 99


async def test_a_put_that_keeps_its_checkpoint_alone_leaves_what_a_prune_would(
    harness: Harness,
) -> None:
    """A run's saver that keeps one checkpoint prunes as it puts: the rows left
    are those the stock saver's puts leave once pruned to the latest, blobs of
    channels the last checkpoints did not change included."""
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada and I live in Oslo")
    read = await AsyncPostgresSaver(harness.db.pool).aget_tuple(latest(session_id))
    assert read is not None
    versions = dict(read.checkpoint["channel_versions"])
    first = {**read.checkpoint, "id": str(uuid6(clock_seq=-2))}
    quiet = {**first, "id": str(uuid6(clock_seq=-2))}  # no channel changed
    stock = AsyncPostgresSaver(harness.db.pool)
    ours = new_saver(harness.db.pool, keep_latest_alone=True)
    bumped = {**versions, "messages": stock.get_next_version(versions["messages"], None)}
    changed = {**quiet, "id": str(uuid6(clock_seq=-2)), "channel_versions": bumped}
    stock_thread, our_thread = str(uuid.uuid4()), str(uuid.uuid4())
    for saver, thread_id in ((stock, stock_thread), (ours, our_thread)):
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        put = await saver.aput(config, first, read.metadata, versions)  # type: ignore[arg-type]
        put = await saver.aput(put, quiet, read.metadata, {})  # type: ignore[arg-type]
        await saver.aput(put, changed, read.metadata, {"messages": bumped["messages"]})  # type: ignore[arg-type]
        # the last checkpoint again, with other metadata: updated, not pruned
        await saver.aput(put, changed, {**read.metadata, "step": 99}, {})  # type: ignore[arg-type]
    await prune_thread(harness.db.pool, stock_thread, keep=1)
    stock_blobs, stock_checkpoints = await stored_rows(harness, stock_thread)
    our_blobs, our_checkpoints = await stored_rows(harness, our_thread)
    assert len(stock_checkpoints) == 1 and our_checkpoints == stock_checkpoints
    assert our_checkpoints[0]["metadata"]["step"] == 99
    unchanged = {row for row in stock_blobs if row[1] != "messages"}
    assert unchanged and our_blobs == stock_blobs
    assert {(row[1], row[2]) for row in our_blobs if row[1] == "messages"} == {
        ("messages", bumped["messages"])
    }
    again = await ours.aget_tuple(latest(our_thread))
    assert (
        again is not None
        and again.checkpoint["channel_values"] == read.checkpoint["channel_values"]
    )
