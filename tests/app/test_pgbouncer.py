"""Scale-out through PgBouncer in transaction pooling mode: two server processes
send their pooled queries through one PgBouncer (fewer server connections than
clients, so transactions of both processes share backends), while the thread
locks and LISTEN/NOTIFY keep direct sessions. Runs never interleave, busy holds
across processes, every tab sees every answer, and nothing fails on a backend
that changed under it (psycopg's prepared statements would)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.identities import anonymous_session, user_session
from tests.support.pgbouncer import PgBouncer, pgbouncer_binary
from tests.support.server import ServerProcess
from tests.support.ws import Socket, Sockets

SESSIONS = 4
TURNS = 3
PROBLEMS = ("prepared statement", "Traceback", '"level": "error"')


@pytest.fixture(scope="module")
def pooled_fleet(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PgBouncer, list[ServerProcess]]]:
    if pgbouncer_binary() is None:
        pytest.fail("PgBouncer is not installed: apt-get install -y pgbouncer (.ci/run does this)")
    bouncer = PgBouncer(server_database, pool_size=3)
    bouncer.start()
    logs = tmp_path_factory.mktemp("pgbouncer-fleet")
    servers = [
        ServerProcess(
            server_database,
            logs / f"server{i}.log",
            THREADLINE_POOLED_DATABASE_URL=bouncer.url_for(server_database),
            THREADLINE_OFFLINE_TOKEN_DELAY_MS="5",
            THREADLINE_DB_POOL_SIZE="8",
        )
        for i in range(2)
    ]
    try:
        for server in servers:
            server.start()
        yield bouncer, servers
    finally:
        for server in servers:
            server.stop()
        bouncer.stop()


async def until_answered(sock: Socket, query_id: str) -> str:
    """Frames until this query's `done` (its run is known by its `ack`) or its
    error; returns "done" or the error's code. The other tab's turns pass by."""
    run_id = None
    while True:
        frame = await sock.recv(timeout=60)
        if frame["type"] == "ack" and frame.get("id") == query_id:
            run_id = frame["run_id"]
        elif frame["type"] == "done" and run_id is not None and frame["run_id"] == run_id:
            return "done"
        elif frame["type"] == "error" and frame.get("id") == query_id:
            return str(frame["code"])


async def ask_until_answered(sock: Socket, contents: list[str]) -> int:
    """Ask each in turn, retrying while the thread is busy; returns the busy answers."""
    busy = 0
    for content in contents:
        while True:
            query_id = await sock.ask(content)
            outcome = await until_answered(sock, query_id)
            if outcome == "done":
                break
            assert outcome == "busy", outcome
            busy += 1
            await asyncio.sleep(0.1)
    return busy


async def test_two_processes_through_pgbouncer(
    pooled_fleet: tuple[PgBouncer, list[ServerProcess]], server_database: str
) -> None:
    bouncer, (first, second) = pooled_fleet
    ws = Sockets()
    try:
        owners = [await anonymous_session(server_database) for _ in range(SESSIONS - 1)]
        owners.append(await user_session(server_database))
        tabs: list[tuple[str, Socket, Socket]] = []
        for session_id, headers in owners:
            here = await ws.open(first, session_id, headers)
            there = await ws.open(second, session_id, headers)
            assert (await here.recv())["type"] == "session"
            assert (await there.recv())["type"] == "session"
            tabs.append((session_id, here, there))

        # Busy across processes: both tabs ask at once, one of them is refused.
        session_id, here, there = tabs[0]
        asked = [await here.ask("a long answer, please"), await there.ask("me too")]
        outcomes = await asyncio.gather(
            until_answered(here, asked[0]), until_answered(there, asked[1])
        )
        assert sorted(outcomes) == ["busy", "done"], outcomes

        # Many turns from both processes at once, each tab retrying while busy.
        await asyncio.gather(
            *(
                ask_until_answered(tab, [f"turn {n}, tab {i} of {sid[:8]}" for n in range(TURNS)])
                for sid, here, there in tabs
                for i, tab in enumerate((here, there))
            )
        )
        await check_journals(server_database, tabs)
    finally:
        await ws.close_all()
    assert f"db={server_database.rsplit('/', 1)[-1]}" in bouncer.log.read_text()
    for server in (first, second):
        text = server.log_path.read_text()
        assert not [p for p in PROBLEMS if p in text], server.log_path


async def check_journals(database_url: str, tabs: list[tuple[str, Socket, Socket]]) -> None:
    """Every thread's journal alternates question and answer (no run interleaved),
    and both tabs, one on each process, saw every answer of their thread."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for session_id, here, there in tabs:
            cur = await conn.execute(
                "SELECT role, id FROM chat_messages WHERE session_id = %s ORDER BY seq",
                (session_id,),
            )
            rows = await cur.fetchall()
            roles = [role for role, _ in rows]
            turns = 2 * TURNS + (1 if session_id == tabs[0][0] else 0)
            assert roles == ["user", "assistant"] * turns, "runs interleaved"
            answers = {message_id for role, message_id in rows if role == "assistant"}
            for tab in (here, there):  # the last answers may still be crossing over
                await tab.until_seen(answers)


def test_pooled_url_needs_the_direct_one(tmp_path: Path) -> None:
    """THREADLINE_POOLED_DATABASE_URL alone changes nothing: the pooled path is
    only taken beside a DATABASE_URL (the direct one)."""
    from app.settings import Settings

    pooled = f"postgresql://postgres@127.0.0.1:6432/{uuid.uuid4().hex}"
    assert Settings(pooled_database_url=pooled).pooled_url() is None
    direct = "postgresql://postgres@127.0.0.1:5432/threadline"
    both = Settings(database_url=direct, pooled_database_url=pooled)
    assert both.pooled_url() == pooled
