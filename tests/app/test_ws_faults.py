"""Faults: a server killed mid-answer, and two server processes on one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from graph.builder import build_graph
from graph.nodes import answer_id_for
from graph.turn import read_window
from memory.db import Database, open_database
from memory.journal import Journal
from tests.support.identities import anonymous_session
from tests.support.server import ServerProcess
from tests.support.ws import LONG_QUESTION, Sockets


@pytest.fixture
async def server_db(server_database: str) -> AsyncIterator[Database]:
    db = await open_database(server_database, pool_size=2)
    yield db
    await db.close()


async def journal_and_window(db: Database, session_id: str) -> tuple[list, list]:
    journal = Journal(db, anon_ttl=timedelta(hours=24))
    rows, _ = await journal.page(session_id, limit=500)
    state = await read_window(build_graph(), db.pool, session_id)
    return rows, state.get("messages", [])


async def test_sigkill_mid_answer_loses_nothing(
    fresh_server: ServerProcess, server_database: str, server_db: Database, ws: Sockets
) -> None:
    fresh_server.start()
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    await sock.ask("my name is Ada")
    await sock.until("done")
    cut_off = await sock.ask("tell me something long")
    await sock.until("ack")
    await sock.until("token")
    fresh_server.kill()  # mid-stream, no shutdown work at all

    rows, _ = await journal_and_window(server_db, session_id)
    assert [r.id for r in rows].count(cut_off) == 1  # the acked message is durable
    assert answer_id_for(cut_off) not in [r.id for r in rows]

    fresh_server.start()
    sock = await ws.open(fresh_server, session_id, headers)
    snapshot = await sock.recv()
    assert [m["id"] for m in snapshot["messages"]] == [r.id for r in rows]
    await sock.ask("tell me something long", cut_off)  # the client resends what had no answer
    frames = await sock.until("done")
    assert any(
        f["type"] == "message" and f["message"]["id"] == answer_id_for(cut_off) for f in frames
    )
    await sock.ask("what is my name?")
    answer = next(f for f in await sock.until("done") if f["type"] == "message")
    assert "Ada" in answer["message"]["content"]

    rows, window = await journal_and_window(server_db, session_id)
    ids = [r.id for r in rows]
    assert len(ids) == len(set(ids)) == 6 and ids.count(cut_off) == 1
    assert [m.id for m in window] == ids[-len(window) :]  # the window is the journal's tail


def started_pair(
    database: str, logs: Path, token_delay_ms: int
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    servers = tuple(
        ServerProcess(
            database,
            logs / f"server{i}.log",
            THREADLINE_OFFLINE_TOKEN_DELAY_MS=str(token_delay_ms),
        )
        for i in range(2)
    )
    for server in servers:
        server.start()
    yield servers  # type: ignore[misc]
    for server in servers:
        server.stop()


@pytest.fixture
def two_servers(
    server_database: str, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    yield from started_pair(server_database, tmp_path, token_delay_ms=20)


@pytest.fixture
def two_slow_servers(
    server_database: str, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Answers of about 6 s: long enough to open a socket in the middle of one."""
    yield from started_pair(server_database, tmp_path, token_delay_ms=100)


async def test_two_processes_never_interleave_one_thread(
    two_servers: tuple[ServerProcess, ServerProcess],
    server_database: str,
    server_db: Database,
    ws: Sockets,
) -> None:
    a, b = two_servers
    session_id, headers = await anonymous_session(server_database)
    tab_a, tab_b = await ws.open(a, session_id, headers), await ws.open(b, session_id, headers)
    await tab_a.recv()
    await tab_b.recv()
    results = []
    for round_ in range(3):
        await asyncio.gather(tab_a.ask(f"from a {round_}"), tab_b.ask(f"from b {round_}"))
        frames_a, frames_b = await asyncio.gather(tab_a.until("done"), tab_b.until("done"))
        results.append((frames_a, frames_b))
        busy = [f for f in frames_a + frames_b if f["type"] == "error" and f["code"] == "busy"]
        assert len(busy) == 1, "exactly one of two simultaneous queries runs"
        # Both tabs stream the same tokens, whichever process runs the turn.
        streamed_a = "".join(f["content"] for f in frames_a if f["type"] == "token")
        streamed_b = "".join(f["content"] for f in frames_b if f["type"] == "token")
        assert streamed_a and streamed_a == streamed_b
        # The run of one process reaches the other process's socket through NOTIFY.
        assert [f["type"] for f in frames_a if f["type"] in ("message", "done")] == [
            "message",
            "done",
        ]
        assert [f["type"] for f in frames_b if f["type"] in ("message", "done")] == [
            "message",
            "done",
        ]
    rows, _ = await journal_and_window(server_db, session_id)
    roles = [r.role for r in rows]
    assert roles == ["user", "assistant"] * 3  # never two user messages in a row


async def test_a_socket_on_another_process_gets_the_answer_from_its_start(
    two_slow_servers: tuple[ServerProcess, ServerProcess], server_database: str, ws: Sockets
) -> None:
    """The answer runs in one process; a socket opened on the other mid-answer gets
    what it streamed so far (heard over NOTIFY), and its tokens continue it."""
    a, b = two_slow_servers
    session_id, headers = await anonymous_session(server_database)
    watching = await ws.open(b, session_id, headers)  # b listens: a sends its events
    await watching.recv()
    asking = await ws.open(a, session_id, headers)
    await asking.recv()
    await asking.ask(LONG_QUESTION)
    # Wait until b has heard 20 characters of the answer: a's own socket is
    # served locally and may be ahead of what NOTIFY has brought to b.
    heard = ""
    while len(heard) < 20:
        frame = await watching.recv()
        heard += frame["content"] if frame["type"] == "token" else ""
    late = await ws.open(b, session_id, headers)
    opened = await late.recv()
    assert opened["active_run"] is True and len(opened["answer_so_far"]["content"]) >= 20
    text = opened["answer_so_far"]["content"]
    frames = await late.until("done")
    for frame in frames:
        if frame["type"] == "token":
            assert frame["at"] == len(text), frame
            text += frame["content"]
    answer = next(f["message"] for f in frames if f["type"] == "message")
    assert text == answer["content"]
