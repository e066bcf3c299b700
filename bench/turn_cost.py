"""Per-turn persistence cost and stored bytes as one thread grows: the stock
LangGraph pattern (`MessagesState` + `add_messages` + `AsyncPostgresSaver`)
against Threadline's bounded state, side by side in one run.

    .venv/bin/python -m bench.turn_cost [--turns 10,100,1000] [--stock-max 1000]
                                        [--vacuum-every 100] [--database-url URL] [--write]

Every variant talks to the same fake model (a 320-character answer to each
120-character question, streamed), which costs next to nothing, so a turn's
wall time is persistence plus graph overhead. The variants take turns in
lockstep (one turn each per round, in an order shuffled every round), so load
from other work on the machine falls on all of them alike. Beside each long
Threadline thread runs a control: the same turns on fresh threads that never
pass 10 turns, so "turn 1,000 against turn 10" is also measured within the
same rounds, immune to the machine getting busier or quieter during the run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from bench.common import (
    LOCAL_SERVER,
    machine,
    median,
    run_on_server_loop,
    scratch_database,
    write_section,
)
from graph.builder import build_graph
from graph.context import TurnContext
from graph.state import Query
from graph.turn import Durability, Turn, prune_after_turn, read_window, run_turn
from memory.checkpoints import Pool
from memory.db import Database, libpq_url, open_database
from memory.journal import Journal
from memory.sessions import Owner, SessionStore

QUESTION_CHARS, ANSWER_CHARS = 120, 320
WINDOW_MESSAGES = 20  # Threadline's window setting for this benchmark
LAST_TURNS = 10  # each point is the median of the thread's last 10 turns
NEIGHBOUR_TURNS = 100  # the turns split by what ran before them (neighbour_note)
FRESH_TURNS = 10  # the controls start a new thread every 10 turns
VACUUM_EVERY = 100  # rounds between the VACUUMs standing in for an absent autovacuum
ANON_TTL = timedelta(hours=24)
STOCK = "stock MessagesState"
WORDS = (  # noqa: SIM905 - a sentence of words reads better than a list
    "thread memory journal window summary answer question model graph state postgres "
    "checkpoint session message token stream planning execution response offline budget "
    "index search vector language korean german trace latency durable resume socket"
).split()
# Bytes a thread holds, counted the same way for every variant: the size of each
# of its rows (values as stored, so compressed when PostgreSQL compressed them).
STORED_SQL = """
SELECT coalesce((SELECT sum(pg_column_size(c.*)) FROM checkpoints c WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(b.*)) FROM checkpoint_blobs b WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(w.*)) FROM checkpoint_writes w WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(m.*)) FROM chat_messages m WHERE session_id = %(t)s), 0)
 AS stored
"""


def sentence(seed: int, length: int) -> str:
    """Varied words, so PostgreSQL's compression does not flatter either side."""
    rng = random.Random(seed)
    words: list[str] = []
    while len(" ".join(words)) < length:
        words.append(
            rng.choice(WORDS) + rng.choice(("", "s", "ing", "ed", str(rng.randint(0, 99))))
        )
    return " ".join(words)[:length]


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- the fake model ------------------------------------------------------------------


class OneChunkModel(GenericFakeChatModel):
    """Streams each answer as one chunk: Threadline's execution node calls
    `astream`, the stock node `ainvoke`, and both should cost the same ~0."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        message = next(self.messages)
        content = message if isinstance(message, str) else str(message.content)
        yield ChatGenerationChunk(message=AIMessageChunk(content=content))


def fake_model() -> GenericFakeChatModel:
    """A model with an endless supply of distinct 320-character answers."""
    answers = (AIMessage(sentence(-i, ANSWER_CHARS)) for i in itertools.count(1))
    return OneChunkModel(messages=answers)


# --- the variants ----------------------------------------------------------------------


@dataclass
class Point:
    """A variant at one thread length: medians of its last turns, bytes stored."""

    to_done_ms: float
    after_ms: float
    stored: int

    @property
    def total_ms(self) -> float:
        """All the database work the turn caused, including pruning after `done`."""
        return self.to_done_ms + self.after_ms


class Variant:
    """One way of running turns, the thread it grows, and what was measured on it."""

    name = ""
    prunes = True  # does work after `done`

    def __init__(self, limit: int) -> None:
        self.limit = limit  # grow no further than this many turns
        self.thread_id = ""
        self.turn_ms: list[float] = []  # to `done`
        self.after_ms: list[float] = []  # after `done`
        self.follows: list[str] = []  # per turn: the variant whose turn ran just before
        self.points: dict[int, Point] = {}

    async def turn(self, i: int) -> tuple[float, float]:
        """Run turn `i`; return ms to `done` and ms of the work after it."""
        raise NotImplementedError


class Stock(Variant):
    """The pattern a user picks first: the whole history in one checkpointed channel,
    LangGraph's default durability."""

    name, prunes = STOCK, False

    def __init__(self, pool: Pool, limit: int) -> None:
        super().__init__(limit)
        model = fake_model()

        async def answer(state: MessagesState) -> dict[str, list[AIMessage]]:
            return {"messages": [await model.ainvoke(state["messages"])]}

        builder = StateGraph(MessagesState)
        builder.add_node("answer", answer)
        builder.add_edge(START, "answer")
        self.graph = builder.compile(checkpointer=AsyncPostgresSaver(pool))
        self.thread_id = str(uuid.uuid4())

    async def turn(self, i: int) -> tuple[float, float]:
        config: Any = {"configurable": {"thread_id": self.thread_id}}
        started = time.perf_counter()
        await self.graph.ainvoke({"messages": [HumanMessage(sentence(i, QUESTION_CHARS))]}, config)
        return ms_since(started), 0.0  # nothing after: stock keeps every checkpoint


class Threadline(Variant):
    """Threadline's graph, run as the server runs a turn: `run_turn` to `done`, then
    `prune_after_turn` (outside the thread's lock, so timed apart; nothing to do
    with `exit`, whose put pruned). With `fresh`,
    a control that starts a new thread every FRESH_TURNS turns."""

    def __init__(self, db: Database, durability: Durability, limit: int, fresh: bool) -> None:
        super().__init__(limit)
        self.name = f"Threadline ({durability})" + (", fresh threads" if fresh else "")
        self.db, self.durability, self.fresh = db, durability, fresh
        self.sessions = SessionStore(db, anon_ttl=ANON_TTL)
        self.ctx = TurnContext(
            journal=Journal(db, anon_ttl=ANON_TTL),
            sessions=self.sessions,
            model=fake_model(),
            window_messages=WINDOW_MESSAGES,
        )
        self.graph = build_graph()

    async def turn(self, i: int) -> tuple[float, float]:
        # Opening a thread is a request of its own in the server: untimed here.
        if not self.thread_id or (self.fresh and (i - 1) % FRESH_TURNS == 0):
            owner = Owner(anon_token_hash=uuid.uuid4().hex * 2)
            self.thread_id = (await self.sessions.create(owner)).id
        query: Query = {"id": str(uuid.uuid4()), "content": sentence(i, QUESTION_CHARS)}
        turn = Turn(self.thread_id, None, False, query)
        started = time.perf_counter()
        async for _ in run_turn(
            self.graph, self.db.pool, self.ctx, turn, durability=self.durability
        ):
            pass
        to_done, started = ms_since(started), time.perf_counter()
        await prune_after_turn(self.db.pool, self.thread_id, durability=self.durability)
        return to_done, ms_since(started)


# --- growing the threads -------------------------------------------------------------


@dataclass
class Vacuum:
    """Stands in for autovacuum when the server has it off (as this CI server's
    conf.d/90-ci.conf does). Threadline deletes checkpoints every turn; without
    vacuum their dead rows pile up and every later prune and checkpoint read
    wades through them, which a server running autovacuum would not show."""

    every: int  # rounds between runs; 0 = never
    runs: int = 0
    seconds: float = 0.0

    async def after_round(self, pool: Pool, i: int) -> None:
        """VACUUM the whole scratch database every `every` rounds, outside any timing."""
        if not self.every or i % self.every:
            return
        started = time.perf_counter()
        async with pool.connection() as conn:
            await conn.execute("VACUUM")
        self.runs += 1
        self.seconds += time.perf_counter() - started


async def autovacuum_is_on(pool: Pool) -> bool:
    async with pool.connection() as conn:
        row = await (await conn.execute("SHOW autovacuum")).fetchone()
    return row is not None and row["autovacuum"] == "on"


async def stored_bytes(pool: Pool, thread_id: str) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute(STORED_SQL, {"t": thread_id})).fetchone()
    return int(row["stored"]) if row else 0


async def record_points(variants: list[Variant], i: int, pool: Pool) -> None:
    for v in variants:
        if i <= v.limit:
            v.points[i] = Point(
                median(v.turn_ms[-LAST_TURNS:]),
                median(v.after_ms[-LAST_TURNS:]),
                await stored_bytes(pool, v.thread_id),
            )


async def grow(variants: list[Variant], sizes: list[int], pool: Pool, vacuum: Vacuum) -> None:
    """Grow every thread one turn a round, in lockstep; at each size, record a point.

    The order is shuffled every round (seeded: a run repeats it), so that no
    variant runs right after the same other one in most rounds. A rotation
    would keep each after the one before it in the list in all rounds but
    one, and what a turn runs after matters: a Threadline turn right after a
    stock turn at 1,000 takes longer (the stock turn's 2,000 messages and its
    large write leave the caches cold; `neighbour_note` reports it each run).
    """
    rng, previous = random.Random(0), ""
    for i in range(1, max(sizes) + 1):
        for v in rng.sample(variants, len(variants)):
            if i <= v.limit:
                to_done, after = await v.turn(i)
                v.turn_ms.append(to_done)
                v.after_ms.append(after)
                v.follows.append(previous)
                previous = v.name
        if i in sizes:
            await record_points(variants, i, pool)
        await vacuum.after_round(pool, i)


async def window_is_journal_tail(db: Database, session_id: str) -> bool:
    """The architecture's invariant, checked once at the end: the checkpointed
    window is exactly the journal's last messages, so the turns measured were
    the normal path and not a broken one."""
    window = (await read_window(build_graph(), db.pool, session_id)).get("messages", [])
    tail = await Journal(db, anon_ttl=ANON_TTL).tail(session_id, len(window))
    return bool(window) and [m.id for m in window] == [row.id for row in tail]


# --- the report ------------------------------------------------------------------------


def table(variants: list[Variant], sizes: list[int]) -> str:
    """One row per (turns, variant), the variants of one size next to each other."""
    lines = [
        "| turns | variant | ms per turn | of which to `done` | after `done` (pruning) | stored |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n in sizes:
        for v in variants:
            p = v.points.get(n)
            if p is None:
                lines.append(f"| {n} | {v.name} | not grown past {v.limit} turns | | | |")
                continue
            age = f"{n} ({FRESH_TURNS} on the thread)" if "fresh" in v.name else f"{n}"
            after = f"{p.after_ms:.1f}" if v.prunes else "—"
            lines.append(
                f"| {age} | {v.name} | {p.total_ms:.1f} | {p.to_done_ms:.1f} | "
                f"{after} | {p.stored / 1e6:.2f} MB |"
            )
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def ratios(by_name: dict[str, Variant], sizes: list[int]) -> str:
    """The three targets, on whole-turn time (to `done` plus pruning after it)."""
    stock, lines = by_name[STOCK], []
    big, small = max(sizes), min(sizes)
    both = max(stock.points)  # the longest thread stock was grown to
    for mode in ("exit", "async"):
        ours = by_name[f"Threadline ({mode})"].points
        fresh = by_name[f"Threadline ({mode}), fresh threads"].points
        flat = ours[big].total_ms / fresh[big].total_ms
        apart = ours[big].total_ms / ours[small].total_ms
        versus = stock.points[both].total_ms / ours[both].total_ms
        waits = stock.points[both].to_done_ms / ours[both].to_done_ms
        lines += [
            f"- Threadline ({mode}) turn {big} / turn {FRESH_TURNS}, same rounds: {flat:.2f}x "
            f"(target ≤ 1.3x: {verdict(flat <= 1.3)}; against its own turn {small}, "
            f"measured rounds apart: {apart:.2f}x)",
            f"- stock / Threadline ({mode}) per-turn time at turn {both}: {versus:.1f}x "
            f"(target ≥ 10x: {verdict(versus >= 10)}; to `done` alone {waits:.1f}x)",
        ]
    return "\n".join([*lines, *byte_ratios(by_name, both, big), neighbour_note(by_name, both)])


def neighbour_note(by_name: dict[str, Variant], both: int) -> str:
    """Threadline (exit)'s turns before `both`, split by what ran just before them."""
    ours, last = by_name["Threadline (exit)"], NEIGHBOUR_TURNS
    start = max(0, both - last)
    turns = list(zip(ours.turn_ms[start:both], ours.follows[start:both], strict=True))
    after_stock = [ms for ms, follows in turns if follows == STOCK]
    others = [ms for ms, follows in turns if follows != STOCK]
    if not after_stock or not others:
        return f"- Threadline (exit), turns {start + 1}–{both}: no split by neighbour"
    return (
        f"- Threadline (exit), turns {start + 1}–{both}, to `done`: {median(after_stock):.1f} ms "
        f"p50 right after a stock turn ({len(after_stock)} turns), {median(others):.1f} ms "
        f"after another's ({len(others)})"
    )


def byte_ratios(by_name: dict[str, Variant], both: int, big: int) -> list[str]:
    """Bytes at the longest thread stock reached, and Threadline's at the longest."""
    ours, stock = by_name["Threadline (exit)"].points, by_name[STOCK].points
    lines = [
        f"- stored for the {both}-turn thread: Threadline {ours[both].stored / 1e6:.2f} MB "
        f"(target < 2 MB: {verdict(ours[both].stored < 2e6)}), stock "
        f"{stock[both].stored / 1e6:.1f} MB ({stock[both].stored / ours[both].stored:.0f}x)"
    ]
    if big != both:
        lines.append(
            f"- stored for the {big}-turn thread: Threadline {ours[big].stored / 1e6:.2f} MB"
        )
    return lines


HOW = """Each variant grows one thread, one turn per round, the variants in an
order shuffled every round (seeded). "ms per turn" is the median wall time of
the thread's last 10 turns when it reaches that length: with a fake model that
costs ~0 it is persistence plus graph overhead. For Threadline it is
`run_turn` to `done` plus the `prune_after_turn` the server runs after `done`
(outside the thread's lock, so not in the user's wait, but work every turn
costs the database); the ratios use that sum. With `exit` durability the
checkpoint's put prunes the thread as it writes (one checkpoint kept, the
default), so nothing is left for after `done`; with `async` the prune after it
still runs. The "fresh threads" rows are controls run in the same rounds: the
same graph on new threads of at most 10 turns, so a long thread is also
compared with a 10-turn one under the same machine load. "stored" is the sum
of `pg_column_size` of the thread's rows in `checkpoints`, `checkpoint_blobs`
and `checkpoint_writes` plus, for Threadline, its journal rows in
`chat_messages`. Stock runs with LangGraph's default durability; Threadline
with `exit` (its default) and `async`. Window: 20 messages."""

READING = """Reading it: the stock thread rewrites its whole history into a new
checkpoint blob at every step and keeps every checkpoint, so its time per turn
grows with the thread and its bytes with the square of it. Threadline's
checkpoint holds a bounded window and one checkpoint per thread, so its time
per turn stays flat and its bytes grow only with the journal (one row per
message). Its floor is what every turn owes, whatever the thread's length: the
user message journaled before `ack`, the answer before `done`, the checkpoint
and its pruning, and the Python work of the graph and the ORM around them.
Pruning deletes rows every turn, so it leans on (auto)vacuum: run with
`--vacuum-every 0` on a server without autovacuum to see a long thread's
pruning slow down as its dead rows pile up."""


def report(
    variants: list[Variant], sizes: list[int], command: str, facts: str, notes: list[str]
) -> str:
    by_name = {v.name: v for v in variants}
    return (
        f"## turn_cost\n\n`{command}` on {facts}.\n\n{HOW}\n\n"
        f"{table(variants, sizes)}\n\n{ratios(by_name, sizes)}\n\n"
        + "".join(f"{note}\n" for note in notes)
        + f"\n{READING}\n"
    )


# --- running it --------------------------------------------------------------------------


def stock_pool(url: str) -> Pool:
    """The pool LangGraph's documentation pairs with AsyncPostgresSaver."""
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        libpq_url(url), max_size=4, kwargs=kwargs, open=False
    )
    return pool


def variants_for(pool: Pool, db: Database, sizes: list[int], stock_max: int) -> list[Variant]:
    longest = max(sizes)
    return [
        Stock(pool, min(stock_max, longest)),
        Threadline(db, "exit", longest, fresh=False),
        Threadline(db, "exit", longest, fresh=True),
        Threadline(db, "async", longest, fresh=False),
        Threadline(db, "async", longest, fresh=True),
    ]


async def measure(url: str, args: argparse.Namespace) -> tuple[list[Variant], list[str]]:
    """Grow the threads on database `url`; return them and notes on the run."""
    sizes = turn_counts(args)
    pool, db = stock_pool(url), await open_database(url)
    await pool.open()
    try:
        variants = variants_for(pool, db, sizes, args.stock_max)
        autovacuum = await autovacuum_is_on(pool)
        vacuum = Vacuum(0 if autovacuum else args.vacuum_every)
        await grow(variants, sizes, pool, vacuum)
        notes = [vacuum_note(autovacuum, vacuum)]
        for v in variants:
            if isinstance(v, Threadline) and not v.fresh:
                ok = await window_is_journal_tail(db, v.thread_id)
                is_ = "is" if ok else "**is not**"
                notes.append(f"- {v.name}: the window {is_} the journal's tail after the last turn")
    finally:
        await pool.close()
        await db.close()
    return variants, notes


def vacuum_note(autovacuum: bool, vacuum: Vacuum) -> str:
    if autovacuum:
        return "- the server runs autovacuum"
    if not vacuum.every:
        return "- autovacuum is off on this server and nothing stood in for it"
    return (
        f"- autovacuum is off on this server: a `VACUUM` of the scratch database every "
        f"{vacuum.every} rounds stood in for it ({vacuum.runs} times, "
        f"{vacuum.seconds:.1f} s in all, outside every timing)"
    )


def turn_counts(args: argparse.Namespace) -> list[int]:
    return sorted({int(n) for n in args.turns.split(",")})


def command_line(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python -m bench.turn_cost", f"--turns {args.turns}"]
    if args.stock_max != 1000:
        parts.append(f"--stock-max {args.stock_max}")
    if args.vacuum_every != VACUUM_EVERY:
        parts.append(f"--vacuum-every {args.vacuum_every}")
    return " ".join(parts)


async def main(args: argparse.Namespace) -> None:
    sizes = turn_counts(args)
    started, load = time.perf_counter(), os.getloadavg()[0]
    with scratch_database(libpq_url(args.database_url)) as url:
        facts = machine(url)
        variants, notes = await measure(url, args)
    notes.append(
        f"- the run took {time.perf_counter() - started:.0f} s; 1-minute load average "
        f"{load:.2f} at its start, {os.getloadavg()[0]:.2f} at its end (other work on "
        "the machine adds noise; the ratios within a round are what it does not skew)"
    )
    body = report(variants, sizes, command_line(args), facts, notes)
    print(body)
    if args.write:
        write_section("turn_cost", body)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", default="10,100,1000", help="thread lengths to report")
    parser.add_argument(
        "--stock-max", type=int, default=1000, help="grow the stock thread no further"
    )
    parser.add_argument(
        "--vacuum-every",
        type=int,
        default=VACUUM_EVERY,
        help="when the server's autovacuum is off, VACUUM every N rounds (0: never)",
    )
    parser.add_argument(
        "--database-url", default=LOCAL_SERVER, help="server to create the scratch database on"
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    return parser.parse_args()


if __name__ == "__main__":
    run_on_server_loop(main(parse_args()))
