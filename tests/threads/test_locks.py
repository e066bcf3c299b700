"""Thread locks asked for at once go to PostgreSQL in batches and still exclude:
one holder per thread, here or in another process, and nothing left held."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from memory.db import libpq_url
from tests.support.locks import opened_locks
from threads.locks import _RELEASE, ThreadLocks

COUNT = 100


@pytest.fixture
async def locks(database_url: str) -> AsyncIterator[ThreadLocks]:
    async with opened_locks(database_url) as opened:
        yield opened


def advisory_locks_held(database_url: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None
    return int(row[0])


def round_trips_of(locks: ThreadLocks) -> tuple[list[int], asyncio.Event]:
    """Counts, per batch sent, the asks it carried (by wrapping the sender); the
    event is set when a batch is at the database."""
    sizes: list[int] = []
    sending = asyncio.Event()
    send = locks._send

    async def counted(asks: list) -> None:  # type: ignore[type-arg]
        sizes.append(len(asks))
        sending.set()
        await send(asks)

    locks._send = counted  # type: ignore[method-assign]
    return sizes, sending


async def test_a_hundred_threads_taken_at_once_share_a_few_round_trips(
    locks: ThreadLocks, database_url: str
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(COUNT)]
    sizes, _ = round_trips_of(locks)

    taken = await asyncio.gather(*(locks.try_acquire(i) for i in ids))

    assert all(taken)
    assert locks.held == set(ids)
    assert sum(sizes) == COUNT and len(sizes) < COUNT // 10, sizes
    assert advisory_locks_held(database_url) == COUNT
    await asyncio.gather(*(locks.release(i) for i in ids))
    assert locks.held == set()
    assert advisory_locks_held(database_url) == 0


async def test_releases_alone_go_as_releases_alone(locks: ThreadLocks, database_url: str) -> None:
    """A batch with nothing to take sends no take: a turn's end costs one statement."""
    ids = [str(uuid.uuid4()) for _ in range(10)]
    await asyncio.gather(*(locks.try_acquire(i) for i in ids))
    conn = await locks._connection()
    sent: list[object] = []
    execute = conn.execute

    async def counted(query: object, *args: object, **kwargs: object) -> object:
        sent.append(query)
        return await execute(query, *args, **kwargs)  # type: ignore[arg-type]

    conn.execute = counted  # type: ignore[method-assign, assignment]
    await asyncio.gather(*(locks.release(i) for i in ids))

    assert sent and all(query == _RELEASE for query in sent), sent
    assert locks.held == set()
    assert advisory_locks_held(database_url) == 0


async def test_one_thread_asked_for_many_times_at_once_has_one_holder(
    locks: ThreadLocks, other_process: ThreadLocks
) -> None:
    thread = str(uuid.uuid4())
    here, there = await asyncio.gather(
        asyncio.gather(*(locks.try_acquire(thread) for _ in range(10))),
        asyncio.gather(*(other_process.try_acquire(thread) for _ in range(10))),
    )
    assert sum(here) + sum(there) == 1
    holder, other = (locks, other_process) if any(here) else (other_process, locks)
    assert not await other.try_acquire(thread)
    await holder.release(thread)
    assert await other.try_acquire(thread)
    await other.release(thread)


async def test_a_release_and_a_take_in_one_batch_give_the_thread_to_the_taker(
    locks: ThreadLocks, database_url: str
) -> None:
    thread, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert await locks.try_acquire(thread)
    sizes, sending = round_trips_of(locks)

    # Asked while a batch (the other thread's take) is at the database: both
    # ride in the next batch, the release first.
    first = asyncio.ensure_future(locks.try_acquire(other))
    await sending.wait()
    released = asyncio.ensure_future(locks.release(thread))
    retaken = asyncio.ensure_future(locks.try_acquire(thread))
    assert await first and await retaken
    await released

    assert sizes == [1, 2]
    assert locks.held == {thread, other}
    assert advisory_locks_held(database_url) == 2
    await locks.release(thread)
    await locks.release(other)
    assert advisory_locks_held(database_url) == 0


async def test_a_lost_connection_fails_the_takes_and_the_next_one_reconnects(
    locks: ThreadLocks, database_url: str
) -> None:
    thread = str(uuid.uuid4())
    assert await locks.try_acquire(thread)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND granted AND pid <> pg_backend_pid()"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    with pytest.raises(psycopg.OperationalError):
        await locks.try_acquire(str(uuid.uuid4()))
    # The lost connection took its locks with it: the thread is free again.
    assert await locks.try_acquire(thread)
    assert locks.held == {thread}
    await locks.release(thread)
