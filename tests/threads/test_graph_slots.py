"""A process runs at most `graph_slots` graphs at once: a turn past them is
journaled and acknowledged at once, then waits for a slot, and runs in full.
A burst of questions is admitted a pool's worth at a time, in the order it
came, and graphs start once it has passed (graph/slots.py, threads/runs.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

import threads.runs as runs_module
from graph.slots import GraphSlots
from memory.errors import DatabaseUnavailable
from memory.models import ChatSession
from memory.sessions import Owner
from tests.support.polling import until
from threads.events import Watcher
from threads.runtime import Runtime

if TYPE_CHECKING:  # the fixture's type, not the conftest module itself
    from tests.threads.conftest import OpenRuntime

ANON = Owner(anon_token_hash="a" * 64)


@pytest.fixture
async def one_slot(runtime_with: OpenRuntime) -> AsyncIterator[Runtime]:
    async with runtime_with(graph_slots=1) as opened:
        yield opened


async def frames_until_done(
    watcher: Watcher, log: list[tuple[str, str]], name: str, streaming: asyncio.Event
) -> None:
    """Record (thread, frame type) in the order frames arrive, across watchers;
    `streaming` is set at the thread's first token."""
    while True:
        frame: dict[str, Any] = await asyncio.wait_for(watcher.queue.get(), 30)
        log.append((name, frame["type"]))
        if frame["type"] == "token":
            streaming.set()
        if frame["type"] in ("done", "error"):
            return


async def test_a_turn_past_the_slots_is_acknowledged_then_waits_for_one(
    one_slot: Runtime,
) -> None:
    first, second = [
        await one_slot.deps.sessions.create(Owner(anon_token_hash=uuid.uuid4().hex * 2))
        for _ in range(2)
    ]
    watchers = {"first": one_slot.threads.watch(first), "second": one_slot.threads.watch(second)}
    log: list[tuple[str, str]] = []
    streaming = {name: asyncio.Event() for name in watchers}
    following = [
        asyncio.create_task(frames_until_done(w, log, name, streaming[name]))
        for name, w in watchers.items()
    ]

    await one_slot.threads.ask(first, {"id": str(uuid.uuid4()), "content": "tell me a story"})
    await asyncio.wait_for(streaming["first"].wait(), 30)  # it holds the slot, streaming
    await one_slot.threads.ask(second, {"id": str(uuid.uuid4()), "content": "and another"})
    await asyncio.gather(*following)

    second_ack = log.index(("second", "ack"))
    first_answered = log.index(("first", "message"))  # its graph's last frame
    second_start = log.index(("second", "progress"))
    assert second_ack < first_answered, log  # acknowledged while the first still ran
    assert first_answered < second_start, log  # its graph began once the first's ended
    assert log[-1] == ("second", "done")
    messages = {name for name, kind in log if kind == "message"}
    assert messages == {"first", "second"}


# -- a burst of questions: acknowledged first, a pool's worth at a time -------------


async def enter(slots: GraphSlots, entered: asyncio.Event) -> None:
    async with slots:
        entered.set()


async def test_a_graph_start_waits_for_a_burst_of_admissions_holding_its_slot() -> None:
    slots = GraphSlots(1, admitting_ahead=1)
    entered = asyncio.Event()
    with slots.admission(), slots.admission():  # two being admitted: more than one
        graph = asyncio.create_task(enter(slots, entered))
        await until(slots.locked)  # it has its slot ...
        assert not entered.is_set()  # ... and waits for the burst
    await asyncio.wait_for(entered.wait(), 5)
    await graph
    assert not slots.locked()


async def test_a_graph_start_goes_ahead_beside_a_few_admissions() -> None:
    slots = GraphSlots(None, admitting_ahead=1)
    entered = asyncio.Event()
    with slots.admission():
        await asyncio.wait_for(enter(slots, entered), 5)
    assert entered.is_set()


async def test_a_turn_cancelled_while_waiting_for_a_burst_gives_its_slot_back() -> None:
    slots = GraphSlots(1, admitting_ahead=0)
    with slots.admission():
        waiting = asyncio.create_task(enter(slots, asyncio.Event()))
        await until(slots.locked)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not slots.locked()


async def test_a_burst_is_admitted_a_pool_of_connections_at_a_time_in_order(
    runtime_with: OpenRuntime,
) -> None:
    async with runtime_with() as runtime:  # db_pool_size 4: two pooled connections
        runs = runtime.threads.runs
        assert runs.deps.db.pool.max_size == 2
        sessions = [await runtime.deps.sessions.create(ANON) for _ in range(4)]
        started = [asyncio.Event() for _ in sessions]
        go = [asyncio.Event() for _ in sessions]

        async def rights(i: int) -> ChatSession:  # the rights' read, held until `go`
            started[i].set()
            await go[i].wait()
            return sessions[i]

        asked = []
        for i, session in enumerate(sessions):
            query = {"id": str(uuid.uuid4()), "content": f"question {i}"}
            asked.append(asyncio.create_task(runs.submit_allowed(rights(i), session.id, query)))
            await until(lambda n=i + 1: runs.slots.admitting == n)  # counted on arrival
        await asyncio.wait_for(asyncio.gather(started[0].wait(), started[1].wait()), 5)
        assert runs.admissions.locked()  # both connections' worth taken ...
        assert not started[2].is_set() and not started[3].is_set()  # ... the rest wait
        go[1].set()
        await asyncio.wait_for(started[2].wait(), 5)  # the next to come, not the last
        assert not started[3].is_set()
        go[0].set()
        await asyncio.wait_for(started[3].wait(), 5)
        go[2].set()
        go[3].set()
        for submitted in asked:
            assert await submitted == (sessions[asked.index(submitted)], [])
        assert runs.slots.admitting == 0
        await until(lambda: not runs.active)  # each turn ran to its end


async def test_a_question_waits_for_its_turn_to_be_admitted_no_longer_than_for_the_pool(
    runtime_with: OpenRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs_module, "CONNECT_TIMEOUT_S", 0.05)
    async with runtime_with() as runtime:  # two pooled connections
        runs = runtime.threads.runs
        held, go = asyncio.Event(), asyncio.Event()
        sessions = [await runtime.deps.sessions.create(ANON) for _ in range(3)]

        async def rights(session: ChatSession) -> ChatSession:
            held.set()
            await go.wait()
            return session

        holding = [
            asyncio.create_task(
                runs.submit_allowed(rights(s), s.id, {"id": str(uuid.uuid4()), "content": "hi"})
            )
            for s in sessions[:2]
        ]
        await until(runs.admissions.locked)
        late = {"id": str(uuid.uuid4()), "content": "and me?"}
        with pytest.raises(DatabaseUnavailable):
            await runs.submit_allowed(rights(sessions[2]), sessions[2].id, late)
        assert await runtime.deps.journal.find(sessions[2].id, [late["id"]]) == {}
        go.set()
        await asyncio.gather(*holding)
        await until(lambda: not runs.active)


async def test_a_run_waiting_for_its_slot_logs_its_ack_with_its_answer(
    one_slot: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's log is written behind it (threads/run_log.py): while its turn
    waits for a graph slot, its ack alone is not written (a busy process's
    write for nothing a follower could use); it goes with the frames after it."""
    runs = one_slot.agent_runs
    writes: list[str] = []  # the runs whose log was written to, in order
    write = runs.store.log

    async def log_write(run_id: str, frames: list[tuple[int, dict[str, Any]]]) -> None:
        writes.append(run_id)
        await write(run_id, frames)

    monkeypatch.setattr(runs.store, "log", log_write)
    first, second = [await one_slot.deps.sessions.create(ANON) for _ in range(2)]
    watcher = one_slot.threads.watch(first)
    await one_slot.threads.ask(first, {"id": str(uuid.uuid4()), "content": "tell me a story"})
    while (await asyncio.wait_for(watcher.queue.get(), 30))["type"] != "token":
        pass  # the first turn holds the only slot, streaming
    run, _ = await runs.ask(second, {"id": str(uuid.uuid4()), "content": "and another"})
    recorder = runs.recorders[run.id]
    # The first turn streams on for far longer than the log's gap (LOG_GAP_S);
    # its answer comes before its graph gives the slot up (a checkpoint later).
    while (await asyncio.wait_for(watcher.queue.get(), 30))["type"] != "message":
        pass
    assert [frame["type"] for _, frame in recorder.frames] == ["ack"]  # still waiting,
    assert run.id not in writes  # its ack unwritten

    await until(lambda: run.id not in runs.recorders, timeout=30)  # its end written
    logged = [frame["type"] for _, frame in await runs.store.frames_after(run.id, 0)]
    assert logged[0] == "ack" and logged[-1] == "done", logged
    assert "message" in logged
