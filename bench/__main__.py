"""Run every benchmark, one after another, and rewrite docs/benchmarks.md.

    .venv/bin/python -m bench            (what `make bench` runs)

Each benchmark runs in a process of its own and rewrites only its own section.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.pgbouncer import pgbouncer_binary

RUNS = [
    ["bench.turn_cost", "--turns", "10,100,1000,5000", "--stock-max", "1000"],
    ["bench.ws_turn", "--turns", "1000"],
    ["bench.ws_load"],
    ["bench.ws_load", "--processes", "2"],
    ["bench.memory_load"],
    ["bench.resume"],
    ["bench.delta_reference", "--turns", "10,100,1000"],
]


# Only where the `pgbouncer` binary is installed (apt-get install pgbouncer).
WITH_PGBOUNCER = [["bench.ws_load", "--processes", "2", "--pgbouncer"]]


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    failed = []
    for run in RUNS + (WITH_PGBOUNCER if pgbouncer_binary() else []):
        print(f"== {' '.join(run)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *run, "--write"], cwd=root)
        if code:
            failed.append(run[0])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
