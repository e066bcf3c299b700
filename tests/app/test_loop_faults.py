"""The supervisor loop under a crash: a server SIGKILLed during a turn's tool
step, then the client's resend. Runs a server of its own (`fresh_server`, a
real `threadline serve` child process with the offline model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest

from graph.builder import build_graph
from graph.nodes import answer_id_for
from graph.turn import read_window
from memory.db import Database, open_database
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.sessions import SessionStore
from tests.support.identities import user_session
from tests.support.server import ServerProcess
from tests.support.ws import Sockets

QUESTION = "Remember that my dentist is Dr. Sarah Chen."


@pytest.fixture
async def server_db(server_database: str) -> AsyncIterator[Database]:
    db = await open_database(server_database, pool_size=2)
    yield db
    await db.close()


async def remembered(db: Database, session_id: str) -> list[str]:
    """The session's user's memories other than conversation summaries."""
    session = await SessionStore(db, anon_ttl=timedelta(hours=24)).get(session_id)
    assert session.user_id is not None
    memories = await MemoryStore(db).list(session.user_id)
    return [m.content for m in memories if m.kind != "summary"]


@pytest.mark.parametrize("when", ["tool step blocked", "after the tool step"])
async def test_sigkill_in_the_loop_then_resend_stores_one_memory_and_one_answer(
    fresh_server: ServerProcess,
    server_database: str,
    server_db: Database,
    ws: Sockets,
    when: str,
) -> None:
    fresh_server.start()
    session_id, headers = await user_session(server_database)
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    async with await psycopg.AsyncConnection.connect(server_database) as holder:
        if when == "tool step blocked":  # `remember` waits on the table inside its step
            await holder.execute("LOCK TABLE memories IN EXCLUSIVE MODE")
        query_id = await sock.ask(QUESTION)
        frames = await sock.until("tool")
        assert frames[-1]["name"] == "remember" and frames[-1]["status"] == "started"
        if when == "after the tool step":
            await sock.until("token")  # the memory is saved; the answer is streaming
        fresh_server.kill()
        await holder.rollback()
    saved_before = await remembered(server_db, session_id)
    assert saved_before == (
        [] if when == "tool step blocked" else ["User said: my dentist is Dr. Sarah Chen"]
    )

    fresh_server.start()
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    await sock.ask(QUESTION, query_id)  # the client resends what had no answer
    frames = await sock.until("done")
    [message] = [f["message"] for f in frames if f["type"] == "message"]
    assert message["id"] == answer_id_for(query_id)
    assert "I will remember that: my dentist is Dr. Sarah Chen" in message["content"]
    assert [s["node"] for s in message["steps"]] == [
        "initialize",
        "planning",
        "execution",
        "planning",
        "execution",
    ]

    assert await remembered(server_db, session_id) == ["User said: my dentist is Dr. Sarah Chen"]
    rows, _ = await Journal(server_db, anon_ttl=timedelta(hours=24)).page(session_id)
    assert [(r.role, r.id) for r in rows] == [("user", query_id), ("assistant", message["id"])]
    window = (await read_window(build_graph(), server_db.pool, session_id))["messages"]
    assert [m.id for m in window] == [r.id for r in rows]  # the window is the journal's tail
