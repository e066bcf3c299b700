"""bench/peer's throughput phase: N clients at once against one server, each on a
fresh thread of its own, M turns each, with the same SDK call as the long thread
(`runs.stream`, bench/peer_sides.py).

The servers take turns in the order A B B A (each runs twice, around the other),
so a drift in the machine's other work falls on both alike. Each client has an
SDK client (an HTTP connection pool) of its own, as N programs would. The
server's CPU time and the client's (this process) are read around each run: a
client near one core busy would be measuring itself, not the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import time
from dataclasses import dataclass, field

from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from psycopg import AsyncConnection

from bench.common import median, percentile
from bench.peer_process import cpu_seconds, megabytes, rss_bytes
from bench.peer_sides import Side, create_thread, stream_turn

CLIENTS = 50
CLIENT_TURNS = 10  # each client's turns, one after another on its own thread
# THREADLINE_DB_POOL_SIZE: half of it SQLAlchemy's (as much again in overflow),
# half psycopg's, so 34 allows 51 pooled connections (its locks and LISTEN take a
# few more); Aegra's default pools allow 50.
POOL_SIZE = 34
TURN_TIMEOUT_S = 120.0  # a turn not done by then counts as failed
CONNECTIONS_SQL = """SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()"""


@dataclass
class LoadRun:
    """One server under N clients: every turn's time, and what it cost the machine."""

    server: str
    clients: int
    wall_s: float = 0.0
    turns_ms: list[float] = field(default_factory=list)  # the turns that finished
    errors: list[str] = field(default_factory=list)  # the turns that did not
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    peak_connections: int = 0  # to the server's database, sampled every 0.2 s

    @property
    def turns_per_s(self) -> float:
        return len(self.turns_ms) / self.wall_s


async def client_turns(
    side: Side, client: LangGraphClient, thread_id: str, run: LoadRun, turns: int
) -> None:
    """One client: its turns on its own thread, one after another."""
    for i in range(1, turns + 1):
        try:
            timed = stream_turn(client, side.assistant, thread_id, i, side.name)
            run.turns_ms.append((await asyncio.wait_for(timed, TURN_TIMEOUT_S)).total_ms)
        except Exception as error:  # a failed turn is a figure of the run, kept
            run.errors.append(f"{type(error).__name__}: {error}"[:200])


async def load(side: Side, clients: int, turns: int) -> LoadRun:
    """`clients` clients, `turns` turns each, all at once; their threads made first, untimed."""
    run = LoadRun(side.name, clients, rss_before=rss_bytes(side.pid))
    sdks = [get_client(url=side.url, api_key=side.api_key) for _ in range(clients)]
    done = asyncio.Event()
    try:
        threads = [await create_thread(sdk) for sdk in sdks]
        watch = asyncio.create_task(peak_connections(side.database_url, done))
        cpu_before, client_before = cpu_seconds(side.pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(
            *(client_turns(side, sdk, t, run, turns) for sdk, t in zip(sdks, threads, strict=True))
        )
        run.wall_s = time.perf_counter() - started
        run.server_cpu_s = cpu_seconds(side.pid) - cpu_before
        run.client_cpu_s = time.process_time() - client_before
        done.set()
        run.peak_connections = await watch
    finally:
        done.set()
        for sdk in sdks:
            await sdk.aclose()
    run.rss_after = rss_bytes(side.pid)
    return run


async def peak_connections(url: str, done: asyncio.Event) -> int:
    """The most connections to the database at `url` seen, every 0.2 s, until `done`."""
    peak = 0
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        while not done.is_set():
            row = await (await conn.execute(CONNECTIONS_SQL)).fetchone()
            peak = max(peak, int(row[0]) if row else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.2)
    return peak


async def load_phase(first: Side, second: Side, clients: int, turns: int) -> list[LoadRun]:
    """Both servers, in the order first, second, second, first."""
    runs = []
    for side in (first, second, second, first):
        run = await load(side, clients, turns)
        print(
            f"{clients} clients, {side.name}: {run.turns_per_s:.1f} turns/s, "
            f"{len(run.errors)} failed",
            flush=True,
        )
        runs.append(run)
    return runs


# --- the report ---------------------------------------------------------------------------


def load_how(clients: int, turns: int, max_connections: str) -> str:
    """What the phase ran, as the report says it."""
    text = f"""Then {clients} clients at once, with the same call
(`client.runs.stream`, both stream modes), against the two controls' servers (the
long threads' servers are stopped first): each client creates a thread of its own
(untimed) and runs {turns} turns on it, one after another, through an SDK client
(an HTTP connection pool) of its own, all in the benchmark's process. The servers
take turns in the order Threadline, Aegra, Aegra, Threadline, so a drift in the
machine's other work falls on both alike. turns/s is the turns that finished over
the run's wall time; "turn" is each call, as above; a turn fails on an error event,
an exception or {TURN_TIMEOUT_S:.0f} s. "server CPU" is the user and system time of
the server's processes meanwhile ("per turn": over the turns done, a figure the
machine's other work sways less than turns/s), "client CPU" that of the benchmark's
process: at one core busy it would be timing itself rather than the server. "peak DB connections"
is the most connections to the server's database seen in `pg_stat_activity`, read
every 0.2 s (PostgreSQL's `max_connections` is {max_connections})."""
    return textwrap.fill(" ".join(text.split()), width=84, break_on_hyphens=False)


def load_table(runs: list[LoadRun]) -> str:
    lines = [
        "| order | server | turns done / asked | wall | turns/s | turn p50 | turn p99 | "
        "failed | server CPU | per turn | client CPU | peak DB connections | "
        "server RSS before → after |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for order, run in enumerate(runs, 1):
        asked = len(run.turns_ms) + len(run.errors)
        p50, p99 = (median(run.turns_ms), percentile(run.turns_ms, 99)) if run.turns_ms else (0, 0)
        cpu_per_turn = run.server_cpu_s * 1000 / max(1, len(run.turns_ms))
        lines.append(
            f"| {order} | {run.server} | {len(run.turns_ms)} / {asked} | {run.wall_s:.1f} s | "
            f"{run.turns_per_s:.1f} | {p50:.0f} ms | {p99:.0f} ms | {len(run.errors)} | "
            f"{run.server_cpu_s:.1f} s | {cpu_per_turn:.0f} ms | {run.client_cpu_s:.1f} s | "
            f"{run.peak_connections} | "
            f"{megabytes(run.rss_before)} → {megabytes(run.rss_after)} |"
        )
    return "\n".join(lines)


@dataclass
class Pooled:
    """A server's runs under load taken together."""

    runs: list[LoadRun]

    @property
    def turns_ms(self) -> list[float]:
        return [ms for run in self.runs for ms in run.turns_ms]

    @property
    def turns_per_s(self) -> float:
        return len(self.turns_ms) / sum(run.wall_s for run in self.runs)

    @property
    def cpu_ms_per_turn(self) -> float:
        return sum(run.server_cpu_s for run in self.runs) * 1000 / max(1, len(self.turns_ms))

    def said(self) -> str:
        done, failed = self.turns_ms, sum(len(run.errors) for run in self.runs)
        p50, p99 = (median(done), percentile(done, 99)) if done else (0, 0)
        busiest = max(run.client_cpu_s / run.wall_s for run in self.runs)
        first, last = self.runs[0], self.runs[-1]
        return (
            f"- {first.server} under {first.clients} clients, its runs together: "
            f"{self.turns_per_s:.1f} turns/s, turn p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
            f"{failed} failed turns, {self.cpu_ms_per_turn:.0f} ms of server CPU per turn; "
            f"the client process busy {busiest:.0%} of a core at most; the server's RSS "
            f"after its last run ÷ after its first {last.rss_after / first.rss_after:.2f}x"
        )


def load_findings(runs: list[LoadRun]) -> list[str]:
    """Each server's runs pooled, and what the errors were."""
    servers = dict.fromkeys(run.server for run in runs)  # in their first run's order
    lines = [Pooled([r for r in runs if r.server == name]).said() for name in servers]
    errors = sorted({e for r in runs for e in r.errors})
    if errors:
        lines.append("- the failed turns' errors: " + "; ".join(f"`{e}`" for e in errors[:5]))
    return lines
