"""One thread over one open WebSocket, turn after turn: what each frame costs
through a real server, beside the same build's in-process `run_turn` in the
same run.

    .venv/bin/python -m bench.ws_turn [--turns 1000] [--report-at 20,100,1000]
                                      [--py-spy PATH] [--write]

A throwaway database, migrated; ONE `threadline serve` process (offline model,
no token delay, rate limits off); one anonymous session and one socket on it.
Beside it, in this process, the same graph with the same model runs `run_turn`
on threads of its own (the server's turn without the server: no socket, no
rights check, no lock, no event bus), once with a cancel switch as the server
gives every turn, once without (as bench/turn_cost). The threads grow in
lockstep, one turn each per round, in rotating order, so the machine's other
work falls on all alike.

Per turn, times from sending `query` (from entering `run_turn`) to `ack`, the
first `token`, `message` and `done` (the end of `run_turn`); and "insert→ack":
from the journal row's `created_at` (the start of the transaction that
inserted the user message, PostgreSQL's clock, the same machine's) to the
moment `ack` arrives. Each report row is the median of the thread's last
LAST_TURNS turns when it reaches that length.

With `--py-spy PATH` (a py-spy binary; it is not a dependency), the server is
sampled during the measured turns and the raw profile written beside the log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    machine,
    median,
    percentile,
    run_on_server_loop,
    scratch_database,
    write_section,
)
from graph.builder import build_graph
from graph.llm import build_chat_model
from graph.turn import Turn, prune_after_turn, run_turn
from memory.db import Database, open_database
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.sessions import Owner, SessionStore
from tests.support.identities import anonymous_session
from tests.support.server import ServerProcess
from threads.options import ThreadOptions
from threads.turn_deps import TurnDeps

SERVER_ENV = {"THREADLINE_RATE_LIMITS": "off", "THREADLINE_OFFLINE_TOKEN_DELAY_MS": "0"}
LAST_TURNS = 20
TURN_TIMEOUT_S = 60.0
STAGES = ("ack", "token", "message", "done")
SOCKET = "socket"
IN_PROCESS = "in-process run_turn (with a cancel switch, as the server runs it)"
BARE = "in-process run_turn (no cancel switch, as bench/turn_cost)"


@dataclass
class Timing:
    """One turn: ms from its start to each stage, and insert→ack in ms."""

    at: dict[str, float] = field(default_factory=dict)
    insert_to_ack: float | None = None


@dataclass
class Side:
    """One of the two threads (the socket, or in-process), turn by turn."""

    name: str
    turns: list[Timing] = field(default_factory=list)

    def median_of(self, upto: int, what: str, window: int = LAST_TURNS) -> float | None:
        """The median of `what` over the `window` turns up to turn `upto`."""
        recent = self.turns[max(0, upto - window) : upto]
        values = [value_of(t, what) for t in recent]
        present = [v for v in values if v is not None]
        return median(present) if present else None


def value_of(timing: Timing, what: str) -> float | None:
    return timing.insert_to_ack if what == "insert→ack" else timing.at.get(what)


def since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def insert_to_ack_ms(message: dict[str, Any]) -> float:
    """From the journal row's `created_at` to now, both on this machine's clock."""
    created = datetime.fromisoformat(str(message["created_at"]))
    return (time.time() - created.timestamp()) * 1000


# --- the socket -----------------------------------------------------------------------


async def socket_turn(conn: ClientConnection, content: str) -> Timing:
    """Send a query; time its frames up to `done`."""
    query_id, timing = str(uuid.uuid4()), Timing()
    started = time.perf_counter()
    await conn.send(json.dumps({"type": "query", "id": query_id, "content": content}))
    async with asyncio.timeout(TURN_TIMEOUT_S):
        while True:
            frame = json.loads(await conn.recv())
            kind = frame["type"]
            if kind == "error":
                raise RuntimeError(f"turn failed: {frame}")
            if kind in STAGES and kind not in timing.at:
                timing.at[kind] = since(started)
                if kind == "ack":
                    timing.insert_to_ack = insert_to_ack_ms(frame["message"])
            if kind == "done":
                return timing


async def open_socket(server: ServerProcess, url: str) -> ClientConnection:
    session_id, headers = await anonymous_session(url)
    conn = await connect(f"{server.ws_url}/ws/sessions/{session_id}", additional_headers=headers)
    first = json.loads(await conn.recv())
    if first.get("type") != "session":
        raise RuntimeError(f"expected a session frame, got {first}")
    return conn


# --- in process -------------------------------------------------------------------------


class InProcess:
    """The server's turn without the server: `run_turn` on the graph, the model and
    the context the server builds (TurnDeps), then the pruning it does after `done`."""

    def __init__(self, db: Database, options: ThreadOptions, *, cancel_switch: bool) -> None:
        self.db, self.options, self.cancel_switch = db, options, cancel_switch
        sessions = SessionStore(db, anon_ttl=options.anon_ttl)
        model = build_chat_model(api_key=None, base_url=None, model="offline")
        self.deps = TurnDeps(
            db,
            sessions,
            Journal(db, anon_ttl=options.anon_ttl),
            MemoryStore(db),
            model,
            build_graph(),
        )
        self.session_id = ""

    async def open(self) -> None:
        owner = Owner(anon_token_hash=uuid.uuid4().hex * 2)
        self.session_id = (await self.deps.sessions.create(owner)).id

    async def turn(self, content: str) -> Timing:
        turn = Turn(self.session_id, None, False, {"id": str(uuid.uuid4()), "content": content})
        # The server gives every turn a cancel switch (the model's stream is then
        # watched for a cancel between chunks); bench/turn_cost's turns have none.
        cancel = asyncio.Event() if self.cancel_switch else None
        ctx, timing = self.deps.context(self.options, cancel=cancel), Timing()
        started = time.perf_counter()
        async for event in run_turn(
            self.deps.graph,
            self.db.pool,
            ctx,
            turn,
            durability=self.options.durability,
            checkpoints_keep=self.options.checkpoints_keep,
        ):
            kind = event["type"]
            if kind in STAGES and kind not in timing.at:
                timing.at[kind] = since(started)
                if kind == "ack":
                    timing.insert_to_ack = insert_to_ack_ms(event["message"])
        timing.at["done"] = since(started)
        await prune_after_turn(
            self.db.pool,
            self.session_id,
            keep=self.options.checkpoints_keep,
            durability=self.options.durability,
        )
        return timing


# --- profiling ---------------------------------------------------------------------------


@contextlib.contextmanager
def sampled(py_spy: str | None, pid: int | None, out: Path) -> Iterator[None]:
    """py-spy on the server while the block runs (when a py-spy binary is given)."""
    if py_spy is None or pid is None:
        yield
        return
    args = [py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    proc = subprocess.Popen([*args, "-o", str(out)], stdout=subprocess.DEVNULL)
    time.sleep(1)  # attached before the clock starts
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        print(f"py-spy profile: {out}", flush=True)


# --- the run --------------------------------------------------------------------------------


def question(i: int) -> str:
    return f"turn {i}: how does a journal keep message {i} durable across a restart?"


async def grow(
    conn: ClientConnection, locals_: list[InProcess], turns: int, sides: list[Side]
) -> None:
    """Every thread one turn per round, the order rotating by round."""
    runners = [lambda q: socket_turn(conn, q), *(local.turn for local in locals_)]
    for i in range(1, turns + 1):
        shift = i % len(runners)
        for k in [*range(shift, len(runners)), *range(shift)]:
            sides[k].turns.append(await runners[k](question(i)))
        if i % 100 == 0:
            print(f"turn {i}: socket done {sides[0].median_of(i, 'done'):.1f} ms", flush=True)


async def measure(url: str, args: argparse.Namespace, log_path: Path) -> list[Side]:
    options = ThreadOptions(anon_ttl=timedelta(hours=24))
    server = ServerProcess(url, log_path, **SERVER_ENV)
    server.start()
    db = await open_database(url, pool_size=4)
    sides = [Side(SOCKET), Side(IN_PROCESS), Side(BARE)]
    try:
        locals_ = [
            InProcess(db, options, cancel_switch=True),
            InProcess(db, options, cancel_switch=False),
        ]
        for local in locals_:
            await local.open()
        conn = await open_socket(server, url)
        pid = server.proc.pid if server.proc else None
        with sampled(args.py_spy, pid, log_path.with_name("server.pyspy.txt")):
            await grow(conn, locals_, args.turns, sides)
        await conn.close()
    finally:
        await db.close()
        print(f"server stopped with exit code {server.stop()}", flush=True)
    return sides


# --- the report -----------------------------------------------------------------------------


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(sides: list[Side], sizes: list[int]) -> str:
    lines = [
        "| turn | path | ack | first token | message | done | insert→ack |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for side in sides:
            values = [side.median_of(n, what) for what in (*STAGES, "insert→ack")]
            lines.append(f"| {n} | {side.name} | " + " | ".join(cell(v) for v in values) + " |")
    return "\n".join(lines)


def verdicts(sides: list[Side], last: int) -> str:
    socket, inproc, bare = sides
    done_s, done_i = socket.median_of(last, "done"), inproc.median_of(last, "done")
    done_b = bare.median_of(last, "done")
    ack_s, ack_i = socket.median_of(last, "insert→ack"), inproc.median_of(last, "insert→ack")
    assert done_s and done_i and done_b and ack_s is not None and ack_i is not None
    ratio = done_s / done_i
    tail = [t.at["done"] for t in socket.turns[-100:]]
    wide = {side.name: side.median_of(last, "done", window=100) for side in sides}
    acks = [side.median_of(last, "insert→ack", window=100) for side in (socket, inproc)]
    return "\n".join(
        [
            f"- turn {last}: socket `done` / in-process `done` (cancel switch): {ratio:.2f}x "
            f"(target ≤ 1.5x: {'met' if ratio <= 1.5 else '**missed**'}); against the "
            f"in-process turn without a cancel switch: {done_s / done_b:.2f}x",
            f"- turn {last}: insert→ack over the socket {ack_s:.1f} ms, in-process "
            f"{ack_i:.1f} ms: the socket adds {ack_s - ack_i:.1f} ms "
            f"(target ≤ 2 ms: {'met' if ack_s - ack_i <= 2 else '**missed**'})",
            f"- the same over the last 100 turns (medians): `done` "
            f"{ratio_of(wide, SOCKET, IN_PROCESS)} and {ratio_of(wide, SOCKET, BARE)}; "
            f"insert→ack {cell(acks[0])} against {cell(acks[1])} ms",
            f"- socket `done` over the last {len(tail)} turns: p50 {percentile(tail, 50):.1f}"
            f" ms, p90 {percentile(tail, 90):.1f} ms, p99 {percentile(tail, 99):.1f} ms",
        ]
    )


def ratio_of(medians: dict[str, float | None], over: str, under: str) -> str:
    top, bottom = medians[over], medians[under]
    return f"{top / bottom:.2f}x" if top and bottom else "-"


HOW = f"""One `threadline serve` process (offline model, `THREADLINE_OFFLINE_TOKEN_DELAY_MS=0`,
`THREADLINE_RATE_LIMITS=off`), one anonymous session, one socket kept open;
beside it, in the benchmark's process, `run_turn` with the server's graph,
model and turn context, each on a thread of its own: once with a cancel switch
(as the server runs every turn: the model's stream is then watched for a
cancel between chunks) and once without (as bench/turn_cost runs it). The
three threads grow in lockstep, one turn each per round, in rotating order.
Times are ms from sending `query` (entering `run_turn`) to each frame; "done"
in-process is the end of `run_turn` (answer journaled, checkpoint durable);
insert→ack is from the user message's `created_at` (the start of its journal
transaction) to `ack`. Each row is the median of the thread's last
{LAST_TURNS} turns when it reaches that length."""


def report(command: str, where: str, sides: list[Side], sizes: list[int]) -> str:
    return (
        f"## ws_turn\n\n`{command}` on {where}.\n\n{HOW}\n\n{table(sides, sizes)}\n\n"
        f"{verdicts(sides, max(sizes))}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=1000, help="turns on each thread")
    parser.add_argument("--report-at", default="20,100,1000", help="thread lengths to report")
    parser.add_argument("--py-spy", default=None, help="a py-spy binary: profile the server")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    sizes = sorted({min(int(n), args.turns) for n in args.report_at.split(",")})
    command = f".venv/bin/python -m bench.ws_turn --turns {args.turns} --report-at {args.report_at}"
    log_path = Path(tempfile.mkdtemp(prefix="ws_turn_")) / "server.log"
    started, load = time.perf_counter(), os.getloadavg()[0]
    with scratch_database() as url:
        where = machine(url)
        sides = run_on_server_loop(measure(url, args, log_path))
    where += f"; 1-minute load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    body = report(command, where, sides, sizes)
    print()
    print(body)
    print(f"server log: {log_path}; total run time {time.perf_counter() - started:.0f} s")
    if args.write:
        write_section("ws_turn", body)


if __name__ == "__main__":
    main()
