"""bench/peer's report: the tables, what they say, and how to read them."""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
import subprocess
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import ROOT, median
from bench.peer_sides import VACUUM_EVERY, WARMUP_TURNS, WIDE, WINDOW, Side

CODE = ("app", "graph", "memory", "threads", "migrations", "pyproject.toml")  # what the server runs
QUIET: Any = {"capture_output": True, "text": True, "check": True}
# A warning, an error or a traceback in a server's log (Threadline logs JSON
# lines, Aegra structlog's console lines with colours).
LOG_PROBLEM = re.compile(
    r'"level": "(?:warning|error|critical)"|\[(?:warning|error|critical)\s*\]|Traceback'
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def report_sizes(turns: int) -> list[int]:
    return sorted({n for n in (10, 100, 1000) if n < turns} | {turns})


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
        "per turn, last 10 | tables grew |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
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
            f"{s.p50('first_chunk_ms', last):.1f} ms | {stored} |"
        )
    return "\n".join(lines)


def growth_table(sides: list[Side], sizes: list[int]) -> str:
    lines = [
        f"| turn | server | turn p50 (last {WINDOW}) | first chunk p50 | thread's rows | "
        "tables grew |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for s in sides:
            point = s.points.get(n)
            stored = f"{size(point.total)} | {size(point.tables)}" if point else "— | —"
            lines.append(
                f"| {n} | {s.name} | {s.p50('total_ms', n):.1f} ms | "
                f"{s.p50('first_chunk_ms', n):.1f} ms | {stored} |"
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
    late = aegra.p50("total_ms", last) / threadline.p50("total_ms", last)
    lines = [
        f"- turn {last}: Aegra's turn takes {late:.1f}x Threadline's; its thread holds "
        f"{aegra.points[last].total / threadline.points[last].total:.0f}x the bytes",
        *(against_control(by, s.name, last) for s in grown),
    ]
    if last >= 2 * WIDE:
        lines += [wide_medians(s, last) for s in sides]
    for s in grown:
        parts = ", ".join(f"{part} {size(n)}" for part, n in s.points[last].rows.items())
        most = sorted(s.points[last].grew.items(), key=lambda item: -item[1])[:4]
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


def report(sides: list[Side], args: Any, facts: str, notes: list[str]) -> str:
    last, sizes = args.turns, report_sizes(args.turns)
    return (
        f"{title(args)}\n\n`{command_line(args)}` on {facts}.\n\n{how(args)}\n\n"
        f"{summary_table(sides, last)}\n\n{growth_table(sides, sizes)}\n\n"
        + "\n".join(findings(sides, last) + notes)
        + f"\n\n{READING}\n"
    )


def title(args: Any) -> str:
    if args.token_delay_ms:
        return f"### Beside Aegra, with models that take {args.token_delay_ms} ms a word"
    return "## Beside a peer: Aegra (#15)"


def how(args: Any) -> str:
    """What ran, and what the columns mean."""
    pace = (
        f"each word {args.token_delay_ms} ms after the last (both models)"
        if args.token_delay_ms
        else "as fast as it can (both models)"
    )
    text = f"""A `threadline serve` (offline model, `THREADLINE_RATE_LIMITS=off`, an account
and an API key made through its REST API) and an Aegra server (`uvicorn
aegra_api.main:app`, no auth: its default) serving `bench/peer_graph`: a stock
`MessagesState` graph with one node whose fake model answers like Threadline's
offline model, at the same length, word by word, {pace}. The same `langgraph_sdk`
script, in the benchmark's process, warms each server up with {WARMUP_TURNS} turns on
a thread of their own, then creates a thread on each and runs
`client.runs.stream(thread, assistant, input={{"messages": [human]}},
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
free space included) from before the thread's first turn. On a machine shared with
other work, a median of {WINDOW} turns moves with that work; the medians of {WIDE}
turns and the ratios to the controls, below the tables, are what it sways least."""
    return textwrap.fill(" ".join(text.split()), width=84, break_on_hyphens=False)


READING = """Reading it: Aegra runs the graph as LangGraph's own server does. The thread's state
lives in LangGraph's `AsyncPostgresSaver` with its default durability: each step of
each run (the input, then the answer node) writes a new checkpoint and, as
`messages` changed, a new blob of the whole message list, and no checkpoint is ever
deleted; so every turn writes the whole history twice more, and the thread's bytes
grow with the square of its length. Beside them, each run's row in `runs` keeps its
final `values` (the whole history again) as its output, and `run_events` logs every
event streamed, each `values` event a copy of the whole history, for an hour.
Deleting the thread takes its row and its runs, not its checkpoints. Every event is
INSERTed, awaited, before the run takes the next one: an answer streamed as 49 words
costs 49 INSERTs in a row, the bulk of Aegra's turn even on a short thread when the
model answers at once. Its first chunk comes later as the thread grows: before the
answer node runs, the input's checkpoint is written and a first `values` event (the
whole history) is sent and logged. Aegra also ends a stream without an `end` event,
so the SDK asks for the run's status after every stream (one more request per turn;
its log shows one `GET /threads/{t}/runs/{r}` per run). Threadline journals each
message once (`chat_messages`), checkpoints a bounded window with one checkpoint per
thread, keeps the event logs of the newest 10 runs only, sends one `values` event of
at most the newest 200 messages, and sends a thread's tokens at most one frame per
20 ms (an instant answer goes out as two chunks). What Threadline's turn pays that
Aegra's does not: an account behind every call (the API key checked; Aegra's default
auth lets anyone in as one `anonymous` user), the thread's lock, long-term memory
(loaded while planning, learned from the turn after the answer), and a graph of four
nodes instead of one."""


def command_line(args: Any) -> str:
    parts = [".venv/bin/python -m bench.peer", f"--turns {args.turns}"]
    if args.token_delay_ms:
        parts.append(f"--token-delay-ms {args.token_delay_ms}")
    if args.vacuum_every != VACUUM_EVERY:
        parts.append(f"--vacuum-every {args.vacuum_every}")
    return " ".join(parts)


def log_note(sides: list[Side]) -> str:
    """What the servers' logs say went wrong, if anything."""
    found = []
    for side in sides:
        lines = side.log_path.read_text(errors="replace").splitlines()
        problems = sum(1 for line in lines if LOG_PROBLEM.search(ANSI.sub("", line)))
        found.append(f"{side.name}: {problems}")
    return "- warning, error or traceback lines in the servers' logs: " + ", ".join(found)


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
    ours = {n: importlib.metadata.version(n) for n in aegra if n != "aegra-api"}
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


def write_turns(sides: list[Side], path: Path) -> None:
    """Every turn's figures, as JSON, for a closer look than the medians."""
    path.write_text(json.dumps({s.name: [asdict(t) for t in s.turns] for s in sides}))
