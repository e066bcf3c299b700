"""Turns per second through real servers under N concurrent WebSocket clients,
next to the database's own rate of single-row committed INSERTs.

    .venv/bin/python -m bench.ws_load [--clients 10,50,100] [--turns 20]
                                      [--processes 1] [--pgbouncer] [--py-spy PATH] [--write]

One run: a throwaway database, migrated; the floor (N psycopg connections
doing N x M one-row autocommit INSERTs between them) measured first, while
nothing else uses the database; then `--processes` `threadline serve`
processes (offline model, no token delay, rate limits off, a pool of 40 shared out;
with `--pgbouncer`, their pooled queries go through a PgBouncer in
transaction mode that this run starts, the locks and LISTEN/NOTIFY directly)
and, per N, N anonymous sessions, each driven by its own WebSocket client
through M sequential turns, the clients spread over the processes in turn.
A turn is timed from sending `query` to its `ack` (the user message is
durable) and to `done` (answer journaled, checkpoint durable, thread free).
Afterwards the servers' logs are scanned for warnings, errors and tracebacks.
With `--py-spy PATH` the (first) server is sampled during the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from websockets.asyncio.client import ClientConnection, connect

from app.settings import OFFLINE_GRAPH_SLOTS
from bench.common import machine, percentile, scratch_database, write_section
from bench.ws_turn import sampled
from memory.db import libpq_url
from tests.support.identities import anonymous_session
from tests.support.pgbouncer import PgBouncer
from tests.support.server import ServerProcess

SERVER_ENV = {"THREADLINE_RATE_LIMITS": "off", "THREADLINE_OFFLINE_TOKEN_DELAY_MS": "0"}
POOL_SIZE = 40  # THREADLINE_DB_POOL_SIZE of one process; N processes share it out
TURN_TIMEOUT_S = 60.0
CONNECTION_HEADROOM = 5  # connections left free on PostgreSQL for anything else
FLOOR_TABLE = "CREATE TABLE ws_load_floor (id bigserial PRIMARY KEY, client int, note text)"
FLOOR_INSERT = "INSERT INTO ws_load_floor (client, note) VALUES (%s, %s)"
WARMUP_TURNS = 3


@dataclass
class TurnResult:
    """One turn as a client saw it: times in ms, or why it did not finish."""

    ack_ms: float | None = None
    done_ms: float | None = None
    error: str | None = None


@dataclass
class LoadResult:
    """All turns of one client count, with the wall time they took."""

    clients: int
    wall_s: float
    turns: list[TurnResult]
    frames: Counter[str] = field(default_factory=Counter)
    server_cpu_s: float = 0.0  # user + system CPU of the server processes meanwhile
    turns_per_client: int = 0  # `turns` holds each client's turns in a row

    @property
    def completed(self) -> list[TurnResult]:
        return [t for t in self.turns if t.done_ms is not None]

    @property
    def turns_per_s(self) -> float:
        return len(self.completed) / self.wall_s

    @property
    def cpu_ms_per_turn(self) -> float:
        return 1000 * self.server_cpu_s / max(1, len(self.completed))

    def failures(self) -> Counter[str]:
        return Counter(t.error for t in self.turns if t.error is not None)


@dataclass
class FloorResult:
    """The committed single-row INSERT rate from `connections` connections."""

    connections: int
    wall_s: float
    latencies_ms: list[float]

    @property
    def inserts_per_s(self) -> float:
        return len(self.latencies_ms) / self.wall_s


# --- the floor: raw committed writes ---------------------------------------------


def free_connections(url: str) -> int:
    """How many more connections PostgreSQL accepts now, keeping some headroom."""
    with psycopg.connect(libpq_url(url)) as conn:
        limit = conn.execute("SHOW max_connections").fetchone()
        used = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        ).fetchone()
    assert limit is not None and used is not None
    return int(limit[0]) - int(used[0]) - CONNECTION_HEADROOM


async def insert_share(conn: psycopg.AsyncConnection[Any], client: int, count: int) -> list[float]:
    """One connection's share of the floor: `count` INSERTs, each its own commit."""
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        await conn.execute(FLOOR_INSERT, (client, f"client {client} row {i}"))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def measure_floor(url: str, connections: int, total: int) -> FloorResult:
    """`total` one-row autocommit INSERTs spread over `connections` concurrent
    connections, all opened before the clock starts."""
    conns = [
        await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True)
        for _ in range(connections)
    ]
    shares = [
        total // connections + (1 if i < total % connections else 0) for i in range(connections)
    ]
    try:
        started = time.perf_counter()
        per_conn = await asyncio.gather(
            *(
                insert_share(conn, i, n)
                for i, (conn, n) in enumerate(zip(conns, shares, strict=True))
            )
        )
        wall = time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()
    return FloorResult(connections, wall, [ms for share in per_conn for ms in share])


def prepare_floor(url: str) -> None:
    """The scratch table the floor writes into."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(FLOOR_TABLE)


# --- the load: WebSocket clients against one server -------------------------------


async def open_client(
    server: ServerProcess, session_id: str, headers: dict[str, str]
) -> ClientConnection:
    """A socket on the session, past its opening `session` frame."""
    conn = await connect(f"{server.ws_url}/ws/sessions/{session_id}", additional_headers=headers)
    first = json.loads(await asyncio.wait_for(conn.recv(), TURN_TIMEOUT_S))
    if first.get("type") != "session":
        raise RuntimeError(f"expected a session frame, got {first}")
    return conn


async def one_turn(conn: ClientConnection, content: str, frames: Counter[str]) -> TurnResult:
    """Send a query and read frames until its `done` (or an `error`)."""
    query_id = str(uuid.uuid4())
    result = TurnResult()
    started = time.perf_counter()
    await conn.send(json.dumps({"type": "query", "id": query_id, "content": content}))
    try:
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while True:
                frame = json.loads(await conn.recv())
                elapsed = (time.perf_counter() - started) * 1000
                frames[frame["type"]] += 1
                if frame["type"] == "ack" and frame.get("id") == query_id:
                    result.ack_ms = elapsed
                elif frame["type"] == "done":
                    result.done_ms = elapsed
                    return result
                elif frame["type"] == "error":
                    result.error = str(frame.get("code"))
                    return result
    except TimeoutError:
        result.error = "timeout"
        return result


async def run_client(
    conn: ClientConnection, client: int, turns: int, go: asyncio.Event, frames: Counter[str]
) -> list[TurnResult]:
    """One client's turns, one after another, starting when `go` is set.

    A timed-out turn ends the client: its socket's state is unknown after it."""
    await go.wait()
    results = []
    for turn in range(turns):
        content = f"client {client}, turn {turn}: how does a journal keep message {turn} durable?"
        result = await one_turn(conn, content, frames)
        results.append(result)
        if result.error == "timeout":
            break
    return results


async def make_sessions(url: str, count: int) -> list[tuple[str, dict[str, str]]]:
    """`count` anonymous sessions written straight into the database, ten at a time."""
    limit = asyncio.Semaphore(10)

    async def one() -> tuple[str, dict[str, str]]:
        async with limit:
            return await anonymous_session(url)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def measure_load(
    url: str, servers: list[ServerProcess], clients: int, turns: int
) -> LoadResult:
    """N clients on N fresh sessions, M turns each, client i on server i mod the
    number of servers; the clock runs from the moment every socket is open
    until the last turn ends."""
    sessions = await make_sessions(url, clients)
    conns = await asyncio.gather(
        *(
            open_client(servers[i % len(servers)], sid, hdrs)
            for i, (sid, hdrs) in enumerate(sessions)
        )
    )
    go, frames = asyncio.Event(), Counter[str]()
    tasks = [
        asyncio.create_task(run_client(conn, i, turns, go, frames)) for i, conn in enumerate(conns)
    ]
    try:
        started = time.perf_counter()
        go.set()
        per_client = await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
    finally:
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)
    # A client stops at a timed-out turn: its turns not run count as failed.
    padded = [ts + [TurnResult(error="not run")] * (turns - len(ts)) for ts in per_client]
    flat = [t for ts in padded for t in ts]
    return LoadResult(clients, wall, flat, frames, turns_per_client=turns)


async def warm_up(url: str, server: ServerProcess) -> None:
    """A few turns first, so the first measured clients do not pay for cold starts."""
    ((session_id, headers),) = await make_sessions(url, 1)
    conn = await open_client(server, session_id, headers)
    try:
        for turn in range(WARMUP_TURNS):
            result = await one_turn(conn, f"warm-up turn {turn}", Counter())
            if result.done_ms is None:
                raise RuntimeError(f"warm-up turn failed: {result.error}")
    finally:
        await conn.close()


# --- the server's log ---------------------------------------------------------------


def log_problems(log_paths: list[Path]) -> list[str]:
    """Warnings, errors, tracebacks and unparseable lines of the servers' logs,
    grouped as `count x level logger: message`."""
    seen: Counter[str] = Counter()
    for log_path in log_paths:
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if line.strip():
                    seen[f"raw: {line.strip()[:200]}"] += 1
                continue
            level = str(entry.get("level", ""))
            if level in ("warning", "error", "critical") or "exc" in entry:
                seen[f"{level} {entry.get('logger')}: {entry.get('msg')}"] += 1
    return [f"{count} x {what}" for what, count in seen.most_common()]


# --- the report ---------------------------------------------------------------------


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.1f}" if values else "-"


def table(loads: list[LoadResult], floors: list[FloorResult]) -> str:
    """The Markdown table: one row per client count."""
    rows = [
        "| clients | turns done / asked | wall s | turns/s | query→ack p50 / p99 ms "
        "| query→done p50 / p99 ms | failed turns | INSERT conns | INSERTs/s "
        "| INSERT p50 / p99 ms | turns/s ÷ INSERTs/s | server CPU ms / turn |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for load, floor in zip(loads, floors, strict=True):
        inserts = floor.latencies_ms
        acks = [t.ack_ms for t in load.completed if t.ack_ms is not None]
        dones = [t.done_ms for t in load.completed if t.done_ms is not None]
        failed = ", ".join(f"{n} {code}" for code, n in load.failures().items()) or "0"
        rows.append(
            f"| {load.clients} | {len(load.completed)} / {len(load.turns)} | {load.wall_s:.1f} "
            f"| {load.turns_per_s:.1f} | {ms(acks, 50)} / {ms(acks, 99)} "
            f"| {ms(dones, 50)} / {ms(dones, 99)} | {failed} | {floor.connections} "
            f"| {floor.inserts_per_s:.0f} | {ms(inserts, 50)} / {ms(inserts, 99)} "
            f"| {load.turns_per_s / floor.inserts_per_s:.3f} | {load.cpu_ms_per_turn:.1f} |"
        )
    return "\n".join(rows)


def frames_line(loads: list[LoadResult]) -> str:
    """Frames a client received per completed turn, by type, over the whole run."""
    total: Counter[str] = Counter()
    for load in loads:
        total.update(load.frames)
    turns = sum(len(load.completed) for load in loads) or 1
    parts = ", ".join(f"{kind} {n / turns:.1f}" for kind, n in total.most_common())
    return f"Frames received per completed turn: {parts}."


def ack_split_line(loads: list[LoadResult]) -> str:
    """query→ack of each client's first turn (every client asks at once, as the
    row starts) apart from that of its later turns."""
    parts = []
    for load in loads:
        n = load.turns_per_client or 1
        first = [t.ack_ms for i, t in enumerate(load.turns) if i % n == 0 and t.ack_ms]
        later = [t.ack_ms for i, t in enumerate(load.turns) if i % n and t.ack_ms]
        if not first or not later:
            continue
        parts.append(
            f"{load.clients} clients: first turns p50 {percentile(first, 50):.1f} / p99 "
            f"{percentile(first, 99):.1f} ms, later turns p50 {percentile(later, 50):.1f} / "
            f"p99 {percentile(later, 99):.1f} ms"
        )
    return "query→ack, each client's first turn (all ask at once) apart from its later ones: " + (
        "; ".join(parts) + "."
    )


def section_name(processes: int, pgbouncer: bool) -> str:
    """ws_load for one process; the fleet variants have sections of their own."""
    if processes == 1 and not pgbouncer:
        return "ws_load"
    return f"ws_load_{processes}p" + ("_pgbouncer" if pgbouncer else "")


def servers_line(processes: int, pgbouncer: bool) -> str:
    what = (
        "One `threadline serve` process"
        if processes == 1
        else (f"{processes} `threadline serve` processes")
    )
    if pgbouncer:
        what += (
            " (pooled queries through one PgBouncer 1.18 in transaction mode, "
            "`default_pool_size = 40`; locks and LISTEN/NOTIFY direct)"
        )
    return what


def report(
    command: str,
    where: str,
    loads: list[LoadResult],
    floors: list[FloorResult],
    problems: list[str],
    load_average: float,
    fleet: tuple[int, bool] = (1, False),
) -> str:
    """The ws_load section of docs/benchmarks.md."""
    log_text = (
        "Server log: no warnings, errors or tracebacks."
        if not problems
        else "Server log (warnings, errors, tracebacks):\n\n"
        + "\n".join(f"- {p}" for p in problems[:15])
    )
    return f"""## {section_name(*fleet)}

`{command}` on {where}; 1-minute load average {load_average:.2f} when it started
(other work on the machine competes with the server, the clients and PostgreSQL).

{servers_line(*fleet)} (offline model, `THREADLINE_OFFLINE_TOKEN_DELAY_MS=0`,
`THREADLINE_RATE_LIMITS=off`, `THREADLINE_DB_POOL_SIZE={POOL_SIZE // fleet[0]}` each,
`THREADLINE_GRAPH_SLOTS` {graph_slots()}); per row,
N anonymous sessions and N WebSocket clients, each running its turns one after another on
its own session. turns/s is completed turns over wall time; latencies are
from sending `query` to its `ack` and to `done`; server CPU is the user +
system CPU time of the server processes over the row, per completed turn
(the figure least moved by other work on the machine). The floor, measured in the
same run before the server starts, is the same number of one-row autocommit
INSERTs into a scratch table from N concurrent psycopg connections (fewer if
PostgreSQL's `max_connections` leaves less room: see the INSERT conns column).
The clients run in the benchmark's own process on the same machine as the
server and PostgreSQL.

{table(loads, floors)}

{frames_line(loads)}

{ack_split_line(loads)}

{log_text}
"""


def graph_slots() -> str:
    """The servers' graph slots: as this process's environment sets them (the
    servers inherit it), or the offline model's default."""
    given = os.environ.get("THREADLINE_GRAPH_SLOTS")
    return f"={given}" if given else f"unset ({OFFLINE_GRAPH_SLOTS} with the offline model)"


# --- the run ------------------------------------------------------------------------


@dataclass
class Fleet:
    """The servers of a run (and the PgBouncer in front of their pools, if any)."""

    url: str
    log_dir: Path
    processes: int
    pgbouncer: bool
    servers: list[ServerProcess] = field(default_factory=list)
    bouncer: PgBouncer | None = None

    def start(self) -> None:
        # One pool of 40 in all (PostgreSQL's default max_connections is 100 and
        # each process holds up to 1.5 x its pool size): shared out among them.
        pool = str(max(4, POOL_SIZE // self.processes))
        env = {**SERVER_ENV, "THREADLINE_DB_POOL_SIZE": pool}
        if self.pgbouncer:
            self.bouncer = PgBouncer(self.url, pool_size=40)
            self.bouncer.start()
            env["THREADLINE_POOLED_DATABASE_URL"] = self.bouncer.url_for(self.url)
        for i in range(self.processes):
            server = ServerProcess(self.url, self.log_dir / f"server{i}.log", **env)
            server.start()
            self.servers.append(server)

    def stop(self) -> None:
        for server in self.servers:
            print(f"server stopped with exit code {server.stop()}", flush=True)
        if self.bouncer is not None:
            self.bouncer.stop()

    @property
    def logs(self) -> list[Path]:
        return [server.log_path for server in self.servers]


def cpu_seconds(servers: list[ServerProcess]) -> float:
    """User + system CPU seconds the server processes have used so far (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for server in servers:
        if server.proc is None:
            continue
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def measure(
    fleet: Fleet, clients: list[int], turns: int, py_spy: str | None = None
) -> tuple[list[LoadResult], list[FloorResult]]:
    """The floor for every N first, then the load for every N through the fleet."""
    url = fleet.url
    prepare_floor(url)
    floors = []
    for n in clients:
        connections = max(1, min(n, free_connections(url)))
        floors.append(await measure_floor(url, connections, n * turns))
        print(
            f"floor N={n}: {floors[-1].inserts_per_s:.0f} INSERTs/s on {connections} connections",
            flush=True,
        )
    fleet.start()
    loads = []
    try:
        for server in fleet.servers:
            await warm_up(url, server)
        first = fleet.servers[0].proc
        with sampled(py_spy, first.pid if first else None, fleet.log_dir / "server.pyspy.txt"):
            for n in clients:
                cpu_before = cpu_seconds(fleet.servers)
                loads.append(await measure_load(url, fleet.servers, n, turns))
                loads[-1].server_cpu_s = cpu_seconds(fleet.servers) - cpu_before
                print(
                    f"load N={n}: {loads[-1].turns_per_s:.1f} turns/s in {loads[-1].wall_s:.1f} s",
                    flush=True,
                )
    finally:
        fleet.stop()
    return loads, floors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="10,50,100", help="comma-separated client counts")
    parser.add_argument("--turns", type=int, default=20, help="turns per client")
    parser.add_argument("--processes", type=int, default=1, help="server processes")
    parser.add_argument(
        "--pgbouncer", action="store_true", help="pooled queries through a PgBouncer"
    )
    parser.add_argument("--py-spy", default=None, help="a py-spy binary: profile the server")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",")]
    command = f".venv/bin/python -m bench.ws_load --clients {args.clients} --turns {args.turns}"
    if args.processes != 1:
        command += f" --processes {args.processes}"
    if args.pgbouncer:
        command += " --pgbouncer"
    log_dir = Path(tempfile.mkdtemp(prefix="ws_load_"))
    started, load_average = time.perf_counter(), os.getloadavg()[0]
    with scratch_database() as url:
        where = machine(url)
        fleet = Fleet(url, log_dir, args.processes, args.pgbouncer)
        loads, floors = asyncio.run(measure(fleet, clients, args.turns, args.py_spy))
    problems = log_problems(fleet.logs)
    shape = (args.processes, args.pgbouncer)
    body = report(command, where, loads, floors, problems, load_average, shape)
    print()
    print(body)
    print(f"server logs: {log_dir}")
    print(f"total run time: {time.perf_counter() - started:.0f} s")
    if args.write:
        write_section(section_name(*shape), body)


if __name__ == "__main__":
    main()
