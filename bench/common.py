"""What every benchmark shares: a throwaway database, machine facts, and
rewriting its own section of docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import uvicorn
from sqlalchemy.engine import make_url

from memory.schema import migrate_sync

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
HEADER = """# Benchmarks

Every figure here comes from one run of the command shown above it, with the
compared variants run side by side in one process on one machine, so ratios
are what to read; absolute times depend on the machine. Benchmarks are never
timing assertions in tests.
"""

T = TypeVar("T")


def run_on_server_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark on the event loop `threadline serve` runs on: uvicorn's
    `auto` choice (uvloop, which uvicorn[standard] installs). An in-process
    figure is then the server's own, and one set beside a figure taken over a
    socket compares like with like. On the stdlib loop, bench/turn_cost's turn
    took 3% longer (an A/B in one process), and bench/ws_turn's in-process turn
    (the offline model's fifty chunks) 9.9 ms against 8.1-9.3 ms on uvloop in
    runs apart (docs/benchmarks.md, the tenth session)."""
    factory = uvicorn.Config(app="app.main:create_app", loop="auto").get_loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


@contextlib.contextmanager
def scratch_database(server_url: str = LOCAL_SERVER, migrate: bool = True) -> Iterator[str]:
    """A new, migrated database on `server_url`, dropped afterwards."""
    name = f"tl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            migrate_sync(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine(url: str) -> str:
    """One line naming the machine the figures come from."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory_gib:.0f} GiB RAM, PostgreSQL {row[0] if row else '?'}, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_section(name: str, body: str) -> None:
    """Replace this benchmark's marked section of docs/benchmarks.md (or add it)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = REPORT.read_text() if REPORT.exists() else HEADER
    section = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text)
