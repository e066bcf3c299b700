"""Resuming a long thread, and starting the server cold.

    .venv/bin/python -m bench.resume [--turns 1000] [--opens 200] [--write]

resume: open a 1,000-turn thread over the socket again and again; p50/p99 of
the time from connecting to the `session` frame (target: p50 under 20 ms), side
by side with a 10-turn thread, so the ratio shows whether length costs anything.

cold start: `threadline serve` on the embedded PostgreSQL from an empty data
directory to a healthy `/api/health`, then a second start on the same data.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from app.auth import new_token, token_hash
from bench.common import machine, percentile, run_on_server_loop, scratch_database, write_section
from memory.anonymous import AnonymousOwners
from memory.db import open_database
from memory.imports import import_sessions
from memory.session_format import ImportedMessage, ImportedSession
from memory.sessions import Owner
from tests.support.server import ServerProcess


async def seed_thread(url: str, turns: int) -> tuple[str, dict[str, str]]:
    """A thread of `turns` question/answer pairs, written straight to the journal."""
    token = new_token()
    owner = Owner(anon_token_hash=token_hash(token))
    start = datetime.now(UTC) - timedelta(days=1)
    messages = [
        ImportedMessage(
            str(uuid.uuid4()),
            "user" if i % 2 == 0 else "assistant",
            f"message {i}: " + "words " * (20 if i % 2 == 0 else 50),
            start + timedelta(seconds=i),
        )
        for i in range(2 * turns)
    ]
    session = ImportedSession(str(uuid.uuid4()), f"{turns} turns", start, messages)
    db = await open_database(url, pool_size=2)
    try:
        await AnonymousOwners(db).issue(owner.anon_token_hash or "", timedelta(days=2))
        await import_sessions(db, owner, [session], anon_ttl=timedelta(days=2))
    finally:
        await db.close()
    return session.id, {"X-Anon-Token": token}


async def time_to_session_frame(
    server: ServerProcess, session_id: str, headers: dict[str, str], opens: int
) -> list[float]:
    timings = []
    for _ in range(opens):
        started = time.perf_counter()
        async with connect(
            f"{server.ws_url}/ws/sessions/{session_id}", additional_headers=headers
        ) as ws:
            frame = json.loads(await ws.recv())
            timings.append((time.perf_counter() - started) * 1000)
            assert frame["type"] == "session"
    return timings


async def resume(url: str, turns: int, opens: int, log_dir: Path) -> str:
    long_thread = await seed_thread(url, turns)
    short_thread = await seed_thread(url, 10)
    server = ServerProcess(url, log_dir / "resume.log", THREADLINE_RATE_LIMITS="off")
    server.start()
    try:
        await time_to_session_frame(server, *short_thread, 10)  # warm up
        rows = {}
        for name, (session_id, headers) in (
            ("10 turns", short_thread),
            (f"{turns} turns", long_thread),
        ):
            timings = await time_to_session_frame(server, session_id, headers, opens)
            rows[name] = (percentile(timings, 50), percentile(timings, 99))
    finally:
        server.stop()
    lines = ["| thread | p50 ms | p99 ms |", "|---|---|---|"]
    lines += [f"| {name} | {p50:.1f} | {p99:.1f} |" for name, (p50, p99) in rows.items()]
    (short50, _), (long50, _) = rows.values()
    lines.append("")
    lines.append(
        f"- {turns}-turn thread p50: {long50:.1f} ms (target < 20 ms); "
        f"{long50 / short50:.2f}x the 10-turn thread's"
    )
    return "\n".join(lines)


def cold_start(log_dir: Path) -> str:
    """Two starts of `threadline serve` on one embedded data directory."""
    data = Path(tempfile.mkdtemp(prefix="tl-cold-"))
    timings = []
    for attempt in ("first start (empty data directory)", "second start (existing data)"):
        server = ServerProcess("", log_dir / "cold.log", THREADLINE_DATA_DIR=str(data))
        server.env.pop("DATABASE_URL")
        started = time.perf_counter()
        server.start(timeout=120)
        timings.append((attempt, time.perf_counter() - started))
        assert httpx.get(f"{server.url}/api/health", timeout=5).json()["database"] == "up"
        server.stop()
    lines = ["| start | seconds to healthy |", "|---|---|"]
    lines += [f"| {name} | {seconds:.2f} |" for name, seconds in timings]
    lines.append("")
    lines.append(f"- second start / first start: {timings[1][1] / timings[0][1]:.2f}x")
    return "\n".join(lines)


async def main(turns: int, opens: int, write: bool) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    with scratch_database() as url:
        resumed = await resume(url, turns, opens, log_dir)
        facts = machine(url)
    cold = cold_start(log_dir)
    report = (
        "## resume and cold start\n\n"
        f"`.venv/bin/python -m bench.resume --turns {turns} --opens {opens}` on {facts}.\n\n"
        f"Time from opening `/ws/sessions/{{id}}` to its `session` frame, {opens} opens each, "
        f"one server process, the client in the same machine:\n\n{resumed}\n\n"
        f"`threadline serve` with no `DATABASE_URL` (embedded PostgreSQL), from start to a "
        f"healthy `/api/health`:\n\n{cold}\n"
    )
    print(report)
    if write:
        write_section("resume", report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--opens", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    run_on_server_loop(main(args.turns, args.opens, args.write))
