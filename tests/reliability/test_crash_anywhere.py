"""Crash anywhere: SIGKILL the server at random points of turns, restart it, and
check after every crash that memory did not break.

`THREADLINE_CRASHES` sets how many kills (CI runs a few; `make reliability`
runs 100). Each kill lands at a random moment of a turn: before the ack, after
it, mid-stream, after `done`, or during the memory save that follows.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections import Counter
from pathlib import Path

from graph.builder import build_graph
from graph.turn import read_window
from memory.db import open_database
from tests.reliability.conftest import REPORTS
from tests.support.api import new_session, register
from tests.support.server import ServerProcess
from tests.support.ws import Socket

CRASHES = int(os.environ.get("THREADLINE_CRASHES", "6"))


async def journal_state(url: str, session_id: str) -> tuple[list[dict], list[str]]:
    db = await open_database(url, pool_size=2)
    try:
        async with db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, seq, role, metadata->>'reply_to' AS reply_to FROM chat_messages"
                " WHERE session_id = %s ORDER BY seq",
                (session_id,),
            )
            rows = await cur.fetchall()
        state = await read_window(build_graph(), db.pool, session_id)
        return [dict(r) for r in rows], [str(m.id) for m in state.get("messages", [])]
    finally:
        await db.close()


def check_invariants(
    rows: list[dict], window: list[str], acked: set[str], *, settled: bool = False
) -> None:
    """What must hold after any crash.

    A crash can leave the checkpoint one cut-off turn behind the journal: the
    window is then a run of consecutive journal messages that ends early, and the
    next turn rebuilds it. Once a turn has completed (`settled`) it is the tail.
    """
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a message is stored twice"
    assert acked <= set(ids), f"acked but lost: {acked - set(ids)}"
    replies = [r["reply_to"] for r in rows if r["role"] == "assistant"]
    assert len(replies) == len(set(replies)), "a question was answered twice"
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    if window:
        start = ids.index(window[0])
        assert window == ids[start : start + len(window)], "the window is not a run of the journal"
        if settled:
            assert window == ids[-len(window) :], "the window is not the journal's tail"


async def one_round(
    server: ServerProcess,
    session_id: str,
    headers: dict,
    pending: dict[str, str],
    rng: random.Random,
) -> tuple[str, set[str]]:
    """Resend what has no answer, ask something new, and kill the server at a random moment.

    Returns the phase the kill landed in and the ids acked during the round.
    """
    acked: set[str] = set()
    sock = await Socket.open(server.ws_url, session_id, headers)
    try:
        await sock.recv()
        for query_id, content in list(pending.items()):  # the client resends unanswered queries
            await sock.ask(content, query_id)
            frames = await sock.until("done")
            acked |= {f["id"] for f in frames if f["type"] == "ack"}
            pending.pop(query_id)
        query_id = str(uuid.uuid4())
        content = rng.choice(["my name is Ada", "tell me something long", "where do I live?"])
        pending[query_id] = content
        await sock.ask(content, query_id)
        phase = await run_until(sock, rng.choice(PHASES), rng, acked)
    finally:
        server.kill()
        await sock.close()
    return phase, acked


PHASES = ("before ack", "after ack", "mid-stream", "after done", "during the memory save")


async def run_until(sock: Socket, phase: str, rng: random.Random, acked: set[str]) -> str:
    """Read frames until the turn reaches `phase` (then the caller kills the server)."""
    if phase == "before ack":
        await asyncio.sleep(rng.uniform(0, 0.004))
        return phase
    tokens_wanted = rng.randint(1, 20)
    tokens = 0
    while True:
        frame = await sock.recv(timeout=30)
        if frame["type"] == "ack":
            acked.add(frame["id"])
            if phase == "after ack":
                return phase
        elif frame["type"] == "token":
            tokens += 1
            if phase == "mid-stream" and tokens >= tokens_wanted:
                return phase
        elif frame["type"] == "done":
            if phase == "during the memory save":
                await asyncio.sleep(rng.uniform(0.05, 0.3))  # the save waits 0.4 s
            return phase


async def test_crash_anywhere(server_database: str, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("THREADLINE_CRASH_SEED", "7")))
    server = ServerProcess(
        server_database,
        tmp_path / "server.log",
        THREADLINE_OFFLINE_TOKEN_DELAY_MS="25",
        THREADLINE_MEMORY_SAVE_DELAY_MS="400",
    )
    server.start()
    me = register(server)
    session_id = new_session(server, me)["id"]
    server.kill()
    pending: dict[str, str] = {}
    acked: set[str] = set()
    phases: Counter[str] = Counter()
    for _ in range(CRASHES):
        server.start()
        phase, new_acks = await one_round(server, session_id, me, pending, rng)
        phases[phase] += 1
        acked |= new_acks
        check_invariants(*await journal_state(server_database, session_id), acked)
    server.start()
    try:
        sock = await Socket.open(server.ws_url, session_id, me)
        await sock.recv()
        for query_id, content in pending.items():
            await sock.ask(content, query_id)
            await sock.until("done")
        await sock.ask("what is my name?")
        answer = next(f for f in await sock.until("done") if f["type"] == "message")
        await sock.close()
    finally:
        server.stop()
    rows, window = await journal_state(server_database, session_id)
    check_invariants(rows, window, acked, settled=True)
    users = [r for r in rows if r["role"] == "user"]
    assert len([r for r in rows if r["role"] == "assistant"]) == len(users)  # all answered once
    report = {
        "crashes": CRASHES,
        "kill points": dict(phases),
        "messages": len(rows),
        "acked": len(acked),
        "lost": 0,
        "doubled": 0,
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "crash_anywhere.json").write_text(json.dumps(report, indent=2))
    print("crash anywhere:", report)
    assert "offline model" in answer["message"]["content"]
