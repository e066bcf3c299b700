"""Threadline beside a peer: Aegra (a self-hosted Agent Server) and Threadline,
driven by the same `langgraph_sdk` script, side by side in one process (#15, #17).

    .venv/bin/python -m bench.peer [--turns 200] [--token-delay-ms 0]
                                   [--clients 50] [--client-turns 10]
                                   [--aegra-python PATH] [--write]

A `threadline serve` (offline model, the default with no key; an account and
an API key made through its REST API) and an Aegra 0.11 server (in a venv of
its own on Python 3.12, see bench/peer_aegra.py; no auth, its default) serving
bench/peer_graph: a stock `MessagesState` graph whose fake model answers like
Threadline's offline model, at the same length, word by word. On each, one
thread, then N turns of `client.runs.stream(thread, assistant, input={"messages":
[human]}, stream_mode=["messages-tuple", "values"])` (bench/peer_sides.py).
Beside them, a control of each kind: one more server whose turns go to fresh
threads of at most 10 turns. Each server has a throwaway database of its own;
the four threads grow in lockstep, one turn each per round in rotating order, so
the machine's other work, and each server's load on the shared PostgreSQL, falls
on all alike. Per turn: the wall time of the whole call and the time to its
first `messages` chunk. At the report points, outside every timing: the bytes
of the thread's rows (the sum of `pg_column_size`, as bench/turn_cost counts
them), how much the database's tables grew (`pg_total_relation_size`) and each
server's RSS (bench/peer_process.py). Then, unless `--clients 0`, the long
threads' servers stop and the controls' take 50 clients at once, each on a
fresh thread of its own (bench/peer_load.py). The targets of #17 are judged in
bench/peer_targets.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from langgraph_sdk import get_client

from bench.common import machine, scratch_database, write_section
from bench.peer_aegra import AegraServer, aegra_python, versions
from bench.peer_load import CLIENT_TURNS, CLIENTS, POOL_SIZE, LoadRun, load_phase
from bench.peer_process import rss_bytes
from bench.peer_report import (
    Facts,
    log_note,
    report,
    report_sizes,
    run_note,
    threadline_build,
    version_note,
    write_turns,
)
from bench.peer_sides import (
    AEGRA_ROWS,
    THREADLINE_ROWS,
    VACUUM_EVERY,
    WARMUP_TURNS,
    WINDOW,
    Side,
    autovacuum_is_on,
    new_thread,
    stored,
    table_sizes,
    turn,
    vacuum,
)
from tests.support.api import register
from tests.support.server import ChildServer, ServerProcess

THREADLINE_ENV = {"THREADLINE_RATE_LIMITS": "off"}
SIDES = (("Threadline", False), ("Aegra", False), ("Threadline", True), ("Aegra", True))


# --- the servers -------------------------------------------------------------------------


def api_key(server: ServerProcess) -> str:
    """A new account on the Threadline server and a personal API key of it."""
    headers = register(server)
    made = httpx.post(
        f"{server.url}/api/auth/api-keys", json={"name": "bench.peer"}, headers=headers, timeout=10
    )
    made.raise_for_status()
    key: str = made.json()["key"]
    return key


def open_side(
    stack: contextlib.ExitStack, kind: str, fresh: bool, args: argparse.Namespace, logs: Path
) -> tuple[Side, ChildServer]:
    """A server of `kind` on a throwaway database, started; it stops (and the
    database goes) when `stack` closes."""
    name = kind + (", fresh threads" if fresh else "")
    log = logs / (name.lower().replace(", ", "-").replace(" ", "-") + ".log")
    url = stack.enter_context(scratch_database(migrate=kind == "Threadline"))
    delay = str(args.token_delay_ms)
    if kind == "Threadline":
        threadline = ServerProcess(
            url,
            log,
            THREADLINE_OFFLINE_TOKEN_DELAY_MS=delay,
            THREADLINE_DB_POOL_SIZE=str(args.pool_size),
            **THREADLINE_ENV,
        )
        stack.callback(threadline.stop)
        threadline.start()
        key = api_key(threadline)
        return Side(
            name=name,
            client=get_client(url=threadline.url, api_key=key),
            assistant="threadline",
            database_url=url,
            rows_sql=THREADLINE_ROWS,
            log_path=log,
            pid=threadline.pid,
            url=threadline.url,
            api_key=key,
            fresh=fresh,
        ), threadline
    aegra = AegraServer(args.aegra_python, url, log, PEER_TOKEN_DELAY_MS=delay)
    stack.callback(aegra.stop)
    aegra.start()
    return Side(
        name=name,
        client=get_client(url=aegra.url, api_key=None),
        assistant="peer",
        database_url=url,
        rows_sql=AEGRA_ROWS,
        log_path=log,
        pid=aegra.pid,
        url=aegra.url,
        api_key=None,
        fresh=fresh,
    ), aegra


# --- growing the threads ------------------------------------------------------------------


async def warm_up(sides: list[Side]) -> None:
    """A few turns on another thread first, so the measured threads' first turns
    are not the servers' first (imports, caches, pools); then each server's RSS."""
    for side in sides:
        thread_id = await new_thread(side)
        for i in range(1, WARMUP_TURNS + 1):
            await turn(side, thread_id, i)
    for side in sides:
        side.rss[0] = rss_bytes(side.pid)


async def grow(sides: list[Side], turns: int, sizes: set[int], vacuum_every: int) -> list[str]:
    """Every thread one turn per round, in rotating order; notes on the run."""
    await warm_up(sides)
    grown = [side for side in sides if not side.fresh]
    for side in grown:
        side.thread_id = await new_thread(side)
        side.tables_before = await table_sizes(side.database_url)
    vacuums, vacuum_s, rss_points = 0, 0.0, report_sizes(turns)
    for i in range(1, turns + 1):
        shift = i % len(sides)
        for side in sides[shift:] + sides[:shift]:
            if side.fresh and (i - 1) % WINDOW == 0:
                side.thread_id = await new_thread(side)
            side.turns.append(await turn(side, side.thread_id, i))
        if vacuum_every and i % vacuum_every == 0:
            vacuums, vacuum_s = vacuums + 1, vacuum_s + await vacuum(sides)
        if i in sizes:
            for side in grown:
                side.points[i] = await stored(side)
        if i in rss_points:
            for side in sides:
                side.rss[i] = rss_bytes(side.pid)
        if i % 100 == 0 or i == turns:
            line = ", ".join(f"{s.name} {s.p50('total_ms', i):.1f} ms" for s in sides)
            print(f"turn {i}: p50 of the last {WINDOW}: {line}", flush=True)
    if not vacuum_every:
        return ["- the servers' PostgreSQL runs autovacuum"]
    return [
        f"- autovacuum is off on this PostgreSQL: a `VACUUM` of every database every "
        f"{vacuum_every} rounds stood in for it ({vacuums} times, {vacuum_s:.1f} s in all, "
        "outside every timing)"
    ]


async def measure(sides: list[Side], args: argparse.Namespace) -> list[str]:
    sizes = {*report_sizes(args.turns), args.turns - WINDOW}  # the last 10 turns' bytes too
    every = 0 if await autovacuum_is_on(sides[0].database_url) else args.vacuum_every
    try:
        return await grow(sides, args.turns, sizes, every)
    finally:
        for side in sides:
            await side.client.aclose()


def under_load(opened: list[tuple[Side, ChildServer]], args: argparse.Namespace) -> list[LoadRun]:
    """The long threads' servers stopped, the controls' under `args.clients` clients."""
    if not args.clients:
        return []
    for side, server in opened:
        if not side.fresh:
            server.stop()
    ours, theirs = (side for side, _ in opened if side.fresh)
    return asyncio.run(load_phase(ours, theirs, args.clients, args.client_turns))


def max_connections(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return str(row[0]) if row else "?"


def main() -> None:
    args = parse_args()
    args.aegra_python = aegra_python(args.aegra_python)
    logs = Path(tempfile.mkdtemp(prefix="peer_"))
    started, load = time.perf_counter(), os.getloadavg()[0]
    build = threadline_build()
    with contextlib.ExitStack() as stack:
        opened = [open_side(stack, kind, fresh, args, logs) for kind, fresh in SIDES]
        sides = [side for side, _ in opened]
        url = sides[0].database_url
        facts = Facts(machine(url), max_connections(url), versions(args.aegra_python))
        notes = asyncio.run(measure(sides, args))
        runs = under_load(opened, args)
    notes += [
        log_note(sides),
        version_note(facts.aegra, build),
        run_note(time.perf_counter() - started, load, os.getloadavg()[0]),
    ]
    write_turns(sides, runs, logs / "turns.json")
    body = report(sides, runs, args, facts, notes)
    print(f"\n{body}\nserver logs and every turn's figures (turns.json): {logs}")
    if args.write:
        write_section("peer_token_delay" if args.token_delay_ms else "peer", body)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=200, help="turns on each thread")
    parser.add_argument(
        "--token-delay-ms",
        type=int,
        default=0,
        help="both models wait this long before each word (default: answer at once)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=CLIENTS,
        help=f"clients at once in the throughput phase (default {CLIENTS}; 0: no such phase)",
    )
    parser.add_argument(
        "--client-turns",
        type=int,
        default=CLIENT_TURNS,
        help=f"turns of each client there, on a thread of its own (default {CLIENT_TURNS})",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=POOL_SIZE,
        help=f"THREADLINE_DB_POOL_SIZE of the Threadline servers (default {POOL_SIZE})",
    )
    parser.add_argument(
        "--aegra-python",
        type=Path,
        default=None,
        help="a venv's Python with aegra-api (default: one made under ~/.cache/threadline)",
    )
    parser.add_argument(
        "--vacuum-every",
        type=int,
        default=VACUUM_EVERY,
        help="when autovacuum is off, VACUUM every N rounds (0: never)",
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    return parser.parse_args()


if __name__ == "__main__":
    main()
