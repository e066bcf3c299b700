"""Every operation that changes a thread takes its lock: busy while another process
runs a turn in it, and the rights are checked before anything else."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import timedelta

import psycopg
import pytest

from memory.db import libpq_url
from memory.errors import SessionNotFound
from memory.session_format import FORMAT, VERSION
from memory.sessions import Owner, SessionStore
from tests.support.users import create_user
from threads.events import ACCESS_CHANGED, EventBus
from threads.locks import SessionBusy, ThreadLocks
from threads.runtime import Runtime

ANON = Owner(anon_token_hash="a" * 64)
STRANGER = Owner(anon_token_hash="b" * 64)


def export_of(session_id: str, contents: list[str]) -> io.BytesIO:
    messages = [
        {"id": str(uuid.uuid4()), "role": "user", "content": c, "created_at": None}
        for c in contents
    ]
    document = {"format": FORMAT, "version": VERSION, "session": {"id": session_id}}
    return io.BytesIO(json.dumps({**document, "messages": messages}).encode())


async def test_changes_answer_busy_while_another_process_holds_the_thread(
    runtime: Runtime, other_process: ThreadLocks
) -> None:
    threads = runtime.threads
    first = await runtime.deps.sessions.create(ANON)
    second = await runtime.deps.sessions.create(ANON)
    assert await other_process.try_acquire(first.id)
    assert await threads.is_running(first.id)
    with pytest.raises(SessionBusy):
        await threads.delete(first.id, ANON)
    with pytest.raises(SessionBusy):
        await threads.merge(second.id, first.id, ANON)
    with pytest.raises(SessionBusy):
        await threads.import_file(ANON, export_of(first.id, ["imported"]))
    assert (await runtime.deps.sessions.get(first.id)).message_count == 0
    await other_process.release(first.id)
    assert not await threads.is_running(first.id)
    await threads.import_file(ANON, export_of(first.id, ["imported"]))
    merged = await threads.merge(second.id, first.id, ANON)
    assert merged.message_count == 1


async def test_a_stranger_learns_nothing_not_even_busy(
    runtime: Runtime, other_process: ThreadLocks
) -> None:
    session = await runtime.deps.sessions.create(ANON)
    assert await other_process.try_acquire(session.id)
    with pytest.raises(SessionNotFound):
        await runtime.threads.delete(session.id, STRANGER)
    with pytest.raises(SessionNotFound):
        await runtime.threads.merge(session.id, session.id, STRANGER)


async def test_expire_leaves_a_running_thread_for_the_next_cleanup(
    runtime: Runtime, other_process: ThreadLocks
) -> None:
    born_expired = SessionStore(runtime.deps.db, anon_ttl=timedelta(seconds=-1))
    busy = await born_expired.create(ANON)
    idle = await born_expired.create(ANON)
    kept = await runtime.deps.sessions.create(ANON)
    assert await other_process.try_acquire(busy.id)
    assert await runtime.threads.expire() == 1
    assert {e.id for e in await runtime.threads.find_expired()} == {busy.id}
    await other_process.release(busy.id)
    assert await runtime.threads.expire() == 1
    assert await runtime.threads.find_expired() == []
    assert (await runtime.deps.sessions.get(kept.id)).id == kept.id
    with pytest.raises(SessionNotFound):
        await runtime.deps.sessions.get(idle.id, include_expired=True)


async def test_account_deletion_stops_the_running_turn_and_leaves_no_row(
    runtime: Runtime, database_url: str
) -> None:
    user_id = await create_user(runtime.deps.db, f"{uuid.uuid4().hex[:8]}@example.com")
    session = await runtime.deps.sessions.create(Owner(user_id=user_id))
    watcher = runtime.threads.watch(session)
    await runtime.threads.ask(session, {"id": str(uuid.uuid4()), "content": "tell me a story"})
    while (await watcher.queue.get())["type"] != "token":
        pass  # the turn is streaming now
    user = await runtime.users.get(user_id)
    assert user is not None
    await runtime.accounts.delete(user)
    assert not await runtime.threads.is_running(session.id)
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        for table, key, value in [
            ("users", "id", user_id),
            ("auth_tokens", "user_id", user_id),
            ("chat_sessions", "id", session.id),
            ("chat_messages", "session_id", session.id),
            ("memories", "user_id", user_id),
            ("checkpoints", "thread_id", session.id),
            ("checkpoint_writes", "thread_id", session.id),
            ("checkpoint_blobs", "thread_id", session.id),
        ]:
            cur = await conn.execute(f"SELECT count(*) FROM {table} WHERE {key} = %s", (value,))
            assert (await cur.fetchone()) == (0,), table


async def test_access_changes_reach_watchers_in_another_process(
    runtime: Runtime, database_url: str
) -> None:
    user_id = await create_user(runtime.deps.db, f"{uuid.uuid4().hex[:8]}@example.com")
    mine = await runtime.deps.sessions.create(Owner(user_id=user_id))
    other = await runtime.deps.sessions.create(ANON)
    by_user, by_thread = runtime.threads.watch(mine), runtime.threads.watch(other)
    elsewhere = EventBus(database_url, runtime.deps.journal)
    await elsewhere.open()
    try:
        await elsewhere.access_changed(user_id=user_id)
        assert await asyncio.wait_for(by_user.queue.get(), 10) is ACCESS_CHANGED
        await elsewhere.access_changed(session_id=other.id)
        assert await asyncio.wait_for(by_thread.queue.get(), 10) is ACCESS_CHANGED
        assert by_user.queue.empty()
    finally:
        await elsewhere.close()
