"""Several server processes on one database, many clients spread over them,
pairs of tabs sharing sessions across processes: runs never interleave, every
tab sees every answer of its session (LISTEN/NOTIFY), nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.reliability.conftest import REPORTS
from tests.support.identities import anonymous_session
from tests.support.server import ServerProcess
from tests.support.ws import Socket

PROCESSES = int(os.environ.get("THREADLINE_PROCESSES", "3"))
CLIENTS = int(os.environ.get("THREADLINE_CLIENTS", "12"))  # full run: 50
TURNS = int(os.environ.get("THREADLINE_CLIENT_TURNS", "3"))


@pytest.fixture
def fleet(server_database: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = [
        ServerProcess(
            server_database,
            tmp_path / f"server{i}.log",
            THREADLINE_OFFLINE_TOKEN_DELAY_MS="5",
            THREADLINE_DB_POOL_SIZE="12",
        )
        for i in range(PROCESSES)
    ]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


async def client(sock: Socket, turns: int, rng: random.Random) -> tuple[int, int]:
    """Ask `turns` questions, retrying on busy; returns (answered, busy answers)."""
    answered = busy = 0
    while answered < turns:
        query_id = await sock.ask(f"question {answered} {uuid.uuid4().hex[:6]}")
        while True:
            frame = await sock.recv(timeout=60)
            if frame["type"] == "error" and frame.get("id") == query_id:
                assert frame["code"] == "busy", frame
                busy += 1
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                break
            if frame["type"] == "message" and frame["message"].get("reply_to") == query_id:
                answered += 1
                break
    return answered, busy


async def test_fleet_of_processes_on_one_database(
    fleet: list[ServerProcess], server_database: str
) -> None:
    rng = random.Random(11)
    pairs = [await anonymous_session(server_database) for _ in range(CLIENTS // 2)]
    sockets: list[tuple[str, Socket]] = []
    for i, (session_id, headers) in enumerate(pairs):
        for tab in range(2):  # the two tabs of a session sit on different processes
            server = fleet[(i + tab) % len(fleet)]
            sock = await Socket.open(server.ws_url, session_id, headers)
            await sock.recv()
            sockets.append((session_id, sock))
    results = await asyncio.gather(*(client(sock, TURNS, rng) for _, sock in sockets))
    with psycopg.connect(server_database) as conn:
        for session_id, _ in pairs:
            rows = conn.execute(
                "SELECT role, id, metadata->>'reply_to' FROM chat_messages"
                " WHERE session_id = %s ORDER BY seq",
                (session_id,),
            ).fetchall()
            roles = [r[0] for r in rows]
            assert roles == ["user", "assistant"] * (2 * TURNS), "runs interleaved"
            answers = {r[1] for r in rows if r[0] == "assistant"}
            for sid, sock in sockets:
                if sid == session_id:  # the last answers may still be crossing over
                    await sock.until_seen(answers)
    for _, sock in sockets:
        await sock.close()
    report = {
        "processes": PROCESSES,
        "clients": len(sockets),
        "turns answered": sum(a for a, _ in results),
        "busy answers (retried)": sum(b for _, b in results),
        "interleaved runs": 0,
        "answers missed by a tab": 0,
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "processes.json").write_text(json.dumps(report, indent=2))
    print("processes:", report)
