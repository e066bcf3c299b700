"""An Agent Server API run's log and end (memory/agent_runs.py): its frames are
logged in batches, numbered; one statement ends it, keeps the thread's newest
logs, and says whether other runs of the thread wait."""

from __future__ import annotations

import uuid

from memory.agent_runs import KEEP_LOGS, AgentRunStore
from memory.db import Database, fetch
from memory.sessions import Owner, SessionStore


async def a_run(store: AgentRunStore, session_id: str, *, queued: bool = False) -> str:
    run_id = str(uuid.uuid4())
    added = await store.add(
        run_id, session_id, {"id": run_id, "content": "hi"}, queued=queued, fresh=False
    )
    assert added is not None
    await store.log(run_id, [(1, {"type": "ack"})])
    return run_id


async def states(db: Database, session_id: str) -> list[str]:
    rows = await fetch(
        db, "SELECT state FROM agent_runs WHERE session_id = %s ORDER BY position", (session_id,)
    )
    return [row["state"] for row in rows]


async def test_a_run_ends_and_the_thread_keeps_only_its_newest_logs(
    db: Database, sessions: SessionStore
) -> None:
    store = AgentRunStore(db)
    thread = (await sessions.create(Owner(user_id=None, anon_token_hash="a" * 64))).id
    other = (await sessions.create(Owner(user_id=None, anon_token_hash="b" * 64))).id
    elsewhere = await a_run(store, other)  # another thread's run is never pruned

    ended = []
    for _ in range(KEEP_LOGS + 5):
        run_id = await a_run(store, thread)
        assert await store.end(run_id, thread) is False  # nothing else waits
        ended.append(run_id)

    kept = await fetch(
        db, "SELECT id FROM agent_runs WHERE session_id = %s ORDER BY position", (thread,)
    )
    assert [row["id"] for row in kept] == ended[-KEEP_LOGS:]  # the newest KEEP_LOGS
    assert set(await states(db, thread)) == {"ended"}
    logs = await fetch(
        db, "SELECT count(*) AS n FROM agent_run_events WHERE run_id = %s", (ended[0],)
    )
    assert logs[0]["n"] == 0  # a pruned run's frames went with it
    assert await states(db, other) == ["started"] and elsewhere


async def test_the_end_says_when_other_runs_of_the_thread_wait(
    db: Database, sessions: SessionStore
) -> None:
    store = AgentRunStore(db)
    thread = (await sessions.create(Owner(user_id=None, anon_token_hash="a" * 64))).id
    running = await a_run(store, thread)
    waiting = await a_run(store, thread, queued=True)

    assert await store.end(running, thread) is True
    assert await states(db, thread) == ["ended", "queued"]
    assert await store.end(waiting, thread) is False
    assert await store.end(waiting, thread) is False  # ending twice changes nothing
    assert await states(db, thread) == ["ended", "ended"]


async def test_a_batch_of_frames_is_logged_as_it_came(db: Database, sessions: SessionStore) -> None:
    """Any JSON a frame holds (quotes, backslashes, unicode, nesting, nulls) comes
    back as it went, under its number; a number logged again keeps the first."""
    store = AgentRunStore(db)
    thread = (await sessions.create(Owner(user_id=None, anon_token_hash="c" * 64))).id
    run_id = await a_run(store, thread)  # frame 1 logged
    batch = [
        (2, {"type": "token", "content": 'say "hi" \\ then \n 🙂 ünïcode'}),
        (3, {"type": "memory_loaded", "memories": [{"id": "m1", "key": None, "n": 2.5}]}),
        (4, {"type": "message", "message": {"content": "", "tools_used": []}}),
    ]
    await store.log(run_id, batch)
    await store.log(run_id, [(4, {"type": "changed"}), (5, {"type": "done"})])
    await store.log(run_id, [])
    logged = await store.frames_after(run_id, 0)
    assert logged == [(1, {"type": "ack"}), *batch, (5, {"type": "done"})]
    assert await store.frames_after(run_id, 2, before=5) == batch[1:]


async def test_a_run_s_last_frames_are_logged_as_it_ends(
    db: Database, sessions: SessionStore
) -> None:
    store = AgentRunStore(db)
    thread = (await sessions.create(Owner(user_id=None, anon_token_hash="d" * 64))).id
    run_id = await a_run(store, thread)  # frame 1 logged while it ran
    last = [(2, {"type": "message", "content": 'the "answer"'}), (3, {"type": "done"})]
    assert await store.end(run_id, thread, last) is False
    assert await store.frames_after(run_id, 0) == [(1, {"type": "ack"}), *last]
    assert await states(db, thread) == ["ended"]
    assert await store.end(run_id, thread, [(3, {"type": "late"})]) is False
    assert (await store.frames_after(run_id, 2))[0] == (3, {"type": "done"})
