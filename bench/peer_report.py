"""bench/peer's report: the tables, what they say, and how to read them."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import platform
import re
import subprocess
import textwrap
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, median
from bench.peer_load import (
    CLIENT_TURNS,
    CLIENTS,
    POOL_SIZE,
    LoadRun,
    load_findings,
    load_how,
    load_table,
)
from bench.peer_process import megabytes
from bench.peer_sides import VACUUM_EVERY, WARMUP_TURNS, WIDE, WINDOW, Side
from bench.peer_targets import rss_lines, targets

CODE = ("app", "graph", "memory", "threads", "migrations", "pyproject.toml")  # what the server runs
QUIET: Any = {"capture_output": True, "text": True, "check": True}
# A warning, an error or a traceback in a server's log (Threadline logs JSON
# lines, Aegra structlog's console lines with colours).
LOG_PROBLEM = re.compile(
    r'"level": "(?:warning|error|critical)"|\[(?:warning|error|critical)\s*\]|Traceback'
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CONSOLE_MESSAGE = re.compile(r"\[(?:warning|error|critical)\s*\]\s*(.*?)(?:\s{2,}|\s\[|$)")


def report_sizes(turns: int) -> list[int]:
    return sorted({n for n in (10, 100, 300, 1000) if n < turns} | {turns})


def size(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if abs(n) >= 1e6 else f"{n / 1e3:.1f} kB"


def added_per_turn(side: Side, last: int) -> float:
    """Bytes the thread's rows grew by per turn over its last WINDOW turns."""
    before = side.points.get(last - WINDOW)
    return (side.points[last].total - before.total) / WINDOW if before else math.nan


def summary_table(sides: list[Side], last: int) -> str:
    lines = [
        "| server | turn p50, turns 1–10 | turn p50, last 10 | last ÷ first | first chunk p50, "
        "turns 1–10 | first chunk p50, last 10 | stored for the thread | per turn | "
        "per turn, last 10 | tables grew | server RSS, after warm-up → last |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sides:
        early, late = s.p50("total_ms", WINDOW, first=True), s.p50("total_ms", last)
        point = s.points.get(last)
        stored = (
            f"{size(point.total)} | {size(point.total / last)} | "
            f"{size(added_per_turn(s, last))} | {size(point.tables)}"
            if point
            else "— | — | — | —"
        )
        lines.append(
            f"| {s.name} | {early:.1f} ms | {late:.1f} ms | {late / early:.2f}x | "
            f"{s.p50('first_chunk_ms', WINDOW, first=True):.1f} ms | "
            f"{s.p50('first_chunk_ms', last):.1f} ms | {stored} | "
            f"{megabytes(s.rss[0])} → {megabytes(s.rss[last])} |"
        )
    return "\n".join(lines)


def growth_table(sides: list[Side], sizes: list[int]) -> str:
    lines = [
        f"| turn | server | turn p50 (last {WINDOW}) | first chunk p50 | thread's rows | "
        "tables grew | server RSS |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for s in sides:
            point = s.points.get(n)
            stored = f"{size(point.total)} | {size(point.tables)}" if point else "— | —"
            lines.append(
                f"| {n} | {s.name} | {s.p50('total_ms', n):.1f} ms | "
                f"{s.p50('first_chunk_ms', n):.1f} ms | {stored} | {megabytes(s.rss[n])} |"
            )
    return "\n".join(lines)


def against_control(by: dict[str, Side], name: str, last: int) -> str:
    """The long thread's turn over its server's control, in the same rounds: what
    the thread's length costs, whatever the machine was doing meanwhile."""
    grown, fresh = by[name], by[f"{name}, fresh threads"]
    ratios = [
        grown.p50("total_ms", last, window=w) / fresh.p50("total_ms", last, window=w)
        for w in (WINDOW, WIDE)
        if last >= w
    ]
    said = " and ".join(
        f"{r:.2f}x over the last {w}" for r, w in zip(ratios, (WINDOW, WIDE), strict=False)
    )
    return f"- {name}: turn {last} ÷ its control's turn in the same rounds: {said}"


def wide_medians(s: Side, last: int) -> str:
    """The first and the last WIDE turns' medians: a load spike of a few turns
    moves a median of 10 more than one of 100."""
    turn = [s.p50("total_ms", upto, first, WIDE) for upto, first in ((WIDE, True), (last, False))]
    chunk = [s.p50("first_chunk_ms", u, f, WIDE) for u, f in ((WIDE, True), (last, False))]
    return (
        f"- {s.name}, p50 over turns 1–{WIDE} → over the last {WIDE}: turn {turn[0]:.1f} → "
        f"{turn[1]:.1f} ms ({turn[1] / turn[0]:.2f}x), first chunk {chunk[0]:.1f} → "
        f"{chunk[1]:.1f} ms"
    )


def findings(sides: list[Side], last: int) -> list[str]:
    by = {s.name: s for s in sides}
    grown = [s for s in sides if not s.fresh]
    threadline, aegra = by["Threadline"], by["Aegra"]
    ours, theirs = threadline.p50("total_ms", last), aegra.p50("total_ms", last)
    held = aegra.points[last].total / threadline.points[last].total
    lines = [
        f"- turn {last}: Threadline's turn {ours:.1f} ms, Aegra's {theirs:.1f} ms "
        f"({ours / theirs:.2f}x); Aegra's thread holds {held:.{0 if held >= 10 else 1}f}x the "
        "bytes of Threadline's",
        *(against_control(by, s.name, last) for s in grown),
    ]
    if last >= 2 * WIDE:
        lines += [wide_medians(s, last) for s in sides]
    lines += rss_lines(sides)
    for s in grown:
        parts = ", ".join(f"{part} {size(n)}" for part, n in s.points[last].rows.items())
        grew = [(name, n) for name, n in s.points[last].grew.items() if n > 0]
        most = sorted(grew, key=lambda item: -item[1])[:4]
        lines += [
            f"- {s.name}'s thread after {last} turns: {parts}",
            f"- {s.name}'s tables that grew most: "
            + ", ".join(f"`{name}` {size(n)}" for name, n in most),
        ]
    for s in grown:
        lines.append(
            f"- {s.name}: answers of {median([t.answer_chars for t in s.turns]):.0f} characters "
            f"in {median([t.chunks for t in s.turns]):.0f} chunks (medians); the last "
            f"`values` event carried {s.turns[-1].values_messages} messages"
        )
    return lines


@dataclass
class Facts:
    """What the report says of the run's setting."""

    machine: str  # bench.common.machine's line
    max_connections: str  # PostgreSQL's
    aegra: dict[str, str]  # versions in Aegra's venv (bench.peer_aegra.versions)


def under_load(runs: list[LoadRun], args: Any, max_connections: str) -> str:
    """The 50-client phase: what ran, its table and what it says ("" when skipped)."""
    if not runs:
        return ""
    lines = load_findings(runs)
    return (
        f"{load_how(args.clients, args.client_turns, max_connections)}\n\n{load_table(runs)}\n\n"
        + "\n".join(lines)
        + "\n\n"
    )


def report(
    sides: list[Side], runs: list[LoadRun], args: Any, facts: Facts, notes: list[str]
) -> str:
    """The section: what ran, the tables, what they say."""
    last, sizes = args.turns, report_sizes(args.turns)
    return (
        f"{title(args)}\n\n`{command_line(args)}` on {facts.machine}.\n\n"
        f"{targets_block(sides, runs, args)}{how(args, facts.aegra)}\n\n"
        f"{summary_table(sides, last)}\n\n{growth_table(sides, sizes)}\n\n"
        + "\n".join(findings(sides, last))
        + f"\n\n{under_load(runs, args, facts.max_connections)}"
        + "\n".join(notes)
        + f"\n\n{READING}\n"
    )


def targets_block(sides: list[Side], runs: list[LoadRun], args: Any) -> str:
    """#17's targets, first, as this run met them (not with slow models: they are
    set for the models that answer at once)."""
    if args.token_delay_ms:
        return ""
    by = {s.name: s for s in sides}
    lines = targets(by["Threadline"], by["Aegra"], runs, args.turns)
    return "Targets of #17, Threadline beside Aegra, in this run:\n\n" + "\n".join(lines) + "\n\n"


def title(args: Any) -> str:
    if args.token_delay_ms:
        return f"### Beside Aegra, with models that take {args.token_delay_ms} ms a word"
    return "## Beside a peer: Aegra (#15, #17)"


def how(args: Any, aegra: dict[str, str]) -> str:
    """What ran, and what the columns mean."""
    pace = (
        f"each word {args.token_delay_ms} ms after the last (both models)"
        if args.token_delay_ms
        else "as fast as it can (both models)"
    )
    text = f"""A `threadline serve` (offline model, `THREADLINE_RATE_LIMITS=off`,
`THREADLINE_DB_POOL_SIZE={args.pool_size}`, an account and an API key made through
its REST API) and an Aegra server (aegra-api {aegra["aegra-api"]} in a venv of its own
on Python {aegra["Python"]},
`uvicorn aegra_api.main:app`; its defaults: no auth, no Redis, runs as tasks in the
server's process, pools of 10 + 20 SQLAlchemy and 20 LangGraph connections) serving
`bench/peer_graph`: a stock `MessagesState` graph with one node whose fake model
answers like Threadline's offline model, at the same length, word by word, {pace}.
The same `langgraph_sdk` script, in the benchmark's process, warms each server up
with {WARMUP_TURNS} turns on a thread of their own, then creates a thread on each and
runs `client.runs.stream(thread, assistant, input={{"messages": [human]}},
stream_mode=["messages-tuple", "values"])` turn after turn. Beside them run two
controls, one more server of each kind, whose turns go to fresh threads of at most
{WINDOW} turns. Each of the four servers has a database of its own on the same
PostgreSQL; the four threads grow in lockstep (one turn each per round, in rotating
order), so the machine's other work, and each server's load on the others, falls on
all alike, and "÷ its control" says what the thread's length alone costs. "turn" is
the whole call, from sending the request to the end of the stream; "first chunk" is
the first `messages` event with an `AIMessageChunk`. "stored for the thread" is the
sum of `pg_column_size` of the thread's rows in every table that holds them (as
bench/turn_cost counts them; the parts are listed below the tables); "per turn,
last 10" is what the last {WINDOW} turns added to it, per turn; "tables grew" is the
growth of all the database's tables (`pg_total_relation_size`, indexes, TOAST and
free space included) from before the thread's first turn. "server RSS" is the
resident memory of the server's process and every process under it, read by psutil
(`VmRSS`) after the warm-up and at each report point, outside every timing. On a
machine shared with other work, a median of {WINDOW} turns moves with that work; the
medians of {WIDE} turns and the ratios to the controls, below the tables, are what it
sways least."""
    return textwrap.fill(" ".join(text.split()), width=84, break_on_hyphens=False)


READING = """Reading it: Aegra 0.11 runs the graph as LangGraph's own server does, as a
task in its server's process (with no Redis, its default). The thread's state lives
in LangGraph's `AsyncPostgresSaver` with LangGraph's default durability: each step
of each run (the input, then the answer node) writes a new checkpoint and, as
`messages` changed, a new blob of the whole message list, and no checkpoint is
deleted while the thread lives; so every turn writes the whole history twice more,
and the thread's bytes grow with the square of its length. Each run's row in `runs`
keeps its final `values` (the whole history again) as its output. Unlike 0.6, Aegra
0.11 writes no streamed event to PostgreSQL (its `run_events` table is gone): a
run's events go to a broker in the server's memory, which keeps them for replay until
10 minutes after the run ends (swept once a minute; lost if the server restarts);
each `values` event there holds the whole history, so on a long thread the server
holds the histories of the last 10 minutes' turns, which its RSS shows. With the
event log out of the database, its turn on a short thread costs about what
Threadline's does; on a long one it still reads and writes the whole history at each
step and sends it twice (two `values` events, the input's and the answer's, the
first before any token), so its turn and its first chunk grow with the thread. It
ends a stream with an `end` event now: one request per turn (0.6 needed a second,
for the run's status). Threadline journals each message once (`chat_messages`),
checkpoints a bounded window with one checkpoint per thread, keeps the event logs of
the newest 10 runs only (in PostgreSQL, for a stream to resume from), sends one
`values` event of at most the newest 200 messages, and sends a thread's tokens at
most one frame per 20 ms (an instant answer goes out as two chunks). What
Threadline's turn pays that Aegra's does not: an account behind every call (the API
key checked; Aegra's default auth lets anyone in as one `anonymous` user), the
thread's lock, the run's event log written to PostgreSQL as it streams, long-term
memory (loaded while planning, learned from the turn after the answer, embedded by a
local model), and a graph of four nodes instead of one: on one thread at a time that
hides behind the round trips; under 50 clients at once, on 2 cores shared with
PostgreSQL, it is the server CPU per turn that sets the turns/s."""


def command_line(args: Any) -> str:
    parts = [".venv/bin/python -m bench.peer", f"--turns {args.turns}"]
    if args.token_delay_ms:
        parts.append(f"--token-delay-ms {args.token_delay_ms}")
    if args.vacuum_every != VACUUM_EVERY:
        parts.append(f"--vacuum-every {args.vacuum_every}")
    if (args.clients, args.client_turns) != (CLIENTS, CLIENT_TURNS):
        parts.append(f"--clients {args.clients} --client-turns {args.client_turns}")
    if args.pool_size != POOL_SIZE:
        parts.append(f"--pool-size {args.pool_size}")
    return " ".join(parts)


def log_note(sides: list[Side]) -> str:
    """What the servers' logs say went wrong, if anything: how many lines, and
    which messages (Aegra warns at every start that it runs with no auth file
    and no Redis, its defaults)."""
    found = []
    for side in sides:
        lines = [
            ANSI.sub("", line) for line in side.log_path.read_text(errors="replace").splitlines()
        ]
        problems = Counter(log_message(line) for line in lines if LOG_PROBLEM.search(line))
        said = "; ".join(f"{n} x “{message}”" for message, n in problems.most_common(4))
        found.append(f"{side.name}: {problems.total()}" + (f" ({said})" if said else ""))
    return "- warning, error or traceback lines in the servers' logs: " + ", ".join(found)


def log_message(line: str) -> str:
    """The gist of a log line, in a few words."""
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            fields = json.loads(line)  # Threadline's lines
            line = f"{fields.get('logger', '?')}: {fields.get('msg', line)}"
    console = CONSOLE_MESSAGE.search(line)
    gist = console.group(1) if console else line.strip()
    return gist if len(gist) <= 60 else gist[:59] + "…"


def threadline_build() -> str:
    """The commit the Threadline server runs, and whether its code differs from it
    (others may be editing the same working tree)."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], **QUIET).stdout.strip()
        changed = subprocess.run([*git, "status", "--porcelain", "--", *CODE], **QUIET).stdout
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit {head}" + (" with uncommitted changes to its code" if changed.strip() else "")


def version_note(aegra: dict[str, str], build: str) -> str:
    ours = {"Python": platform.python_version()}
    ours |= {n: importlib.metadata.version(n) for n in aegra if n not in ("aegra-api", "Python")}
    ours["langgraph-sdk (the client)"] = importlib.metadata.version("langgraph-sdk")
    listed = ", ".join(f"{n} {v}" for n, v in ours.items())
    theirs = ", ".join(f"{n} {v}" for n, v in aegra.items())
    return f"- versions: Threadline at {build}, its venv {listed}; Aegra's venv {theirs}"


def run_note(seconds: float, load_before: float, load_after: float) -> str:
    return (
        f"- the run took {seconds:.0f} s; 1-minute load average {load_before:.2f} at its "
        f"start, {load_after:.2f} at its end (other work on the machine adds noise; the "
        "ratios within a round are what it does not skew)"
    )


def write_turns(sides: list[Side], runs: list[LoadRun], path: Path) -> None:
    """Every turn's figures, as JSON, for a closer look than the medians."""
    found: dict[str, Any] = {s.name: [asdict(t) for t in s.turns] for s in sides}
    found["under load"] = [asdict(run) for run in runs]
    path.write_text(json.dumps(found))
