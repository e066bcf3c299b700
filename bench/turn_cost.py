"""Per-turn persistence cost and stored bytes as one thread grows: the stock
LangGraph pattern (`MessagesState` + `add_messages` + `AsyncPostgresSaver`)
against Threadline's bounded state, side by side in one run.

    .venv/bin/python -m bench.turn_cost [--turns 10,100,1000] [--write]

Both use the same fake model (320-character answers to 120-character questions
of varied words, in one chunk), which costs next to nothing, so the time of a
turn is persistence plus graph overhead. Threadline prunes old checkpoints after
`done`, outside the thread's lock; that time is reported beside the turn's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph

from bench.common import machine, median, scratch_database, write_section
from graph.builder import build_graph
from graph.context import TurnContext
from graph.state import Query
from graph.turn import Turn, prune_after_turn, run_turn
from memory.db import Database, open_database
from memory.journal import Journal
from memory.sessions import Owner, SessionStore

WORDS = (  # noqa: SIM905 - a sentence of words reads better than a list
    "thread memory journal window summary answer question model graph state postgres "
    "checkpoint session message token stream planning execution response offline budget "
    "index search vector language korean german trace latency durable resume socket"
).split()


def text(seed: int, length: int) -> str:
    """Varied words, so PostgreSQL's compression does not flatter either side."""
    rng = random.Random(seed)
    words: list[str] = []
    while len(" ".join(words)) < length:
        words.append(
            rng.choice(WORDS) + rng.choice(("", "s", "ing", "ed", str(rng.randint(0, 99))))
        )
    return " ".join(words)[:length]


QUESTION_LENGTH, ANSWER_LENGTH = 120, 320
SIZE_SQL = """
SELECT coalesce((SELECT sum(pg_column_size(c.*)) FROM checkpoints c WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(b.*)) FROM checkpoint_blobs b WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(w.*)) FROM checkpoint_writes w WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(m.*)) FROM chat_messages m WHERE session_id = %(t)s), 0)
 AS stored
"""
READING = """Reading it: Threadline's turn stays flat because its checkpoint holds a
bounded window; the stock thread rewrites its whole history into every
checkpoint, so its time grows linearly and its bytes quadratically. Threadline's
floor is three durable commits a turn, each one the contract asks for: the user
message before `ack`, the answer before `done`, and the checkpoint. The stock
graph, with a single node and one checkpoint write per step, starts cheaper and
crosses Threadline within the first few hundred turns.
"""
Step = Callable[[int], Awaitable[float]]
Point = tuple[float, int, float]  # ms to done, bytes stored, ms of pruning after done


class OneChunkModel(GenericFakeChatModel):
    """A 320-character answer in one chunk: the model costs the same ~0 in both
    graphs, whether called with `ainvoke` (stock) or `astream` (Threadline)."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        message = next(self.messages)
        yield ChatGenerationChunk(message=AIMessageChunk(content=str(message.content)))


def fake_model() -> GenericFakeChatModel:
    answers = (AIMessage(text(-i, ANSWER_LENGTH)) for i in itertools.count())
    return OneChunkModel(messages=answers)


async def stock_thread(db: Database) -> tuple[str, Step]:
    """The pattern a user picks first: the whole history in one checkpointed channel."""
    model = fake_model()

    async def answer(state: MessagesState) -> dict[str, list[AIMessage]]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    graph = builder.compile(checkpointer=AsyncPostgresSaver(db.pool))
    thread_id = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread_id}}

    async def step(i: int) -> float:
        await graph.ainvoke({"messages": [HumanMessage(text(i, QUESTION_LENGTH))]}, config)
        return 0.0  # nothing is pruned: the stock pattern keeps every checkpoint

    return thread_id, step


async def threadline_thread(db: Database, durability: str) -> tuple[str, Step]:
    """Threadline's graph: a bounded window plus the journal."""
    sessions = SessionStore(db, anon_ttl=timedelta(hours=24))
    ctx = TurnContext(
        journal=Journal(db, anon_ttl=timedelta(hours=24)),
        sessions=sessions,
        model=fake_model(),
        window_messages=20,
    )
    session = await sessions.create(Owner(user_id=await bench_user(db)))
    graph = build_graph()

    async def step(i: int) -> float:
        """One turn to `done`; returns the ms of the pruning that follows it."""
        query: Query = {"id": str(uuid.uuid4()), "content": text(i, QUESTION_LENGTH)}
        turn = Turn(session.id, None, False, query)
        async for _ in run_turn(graph, db.pool, ctx, turn, durability=durability):  # type: ignore[arg-type]
            pass
        started = time.perf_counter()
        await prune_after_turn(db.pool, session.id)
        return (time.perf_counter() - started) * 1000

    return session.id, step


async def bench_user(db: Database) -> str:
    from memory.models import User

    async with db.sessions.begin() as s:
        user = User(email=f"{uuid.uuid4().hex}@bench", password_hash="-")
        s.add(user)
        await s.flush()
        return user.id


async def grow(db: Database, thread: tuple[str, Step], sizes: list[int]) -> dict[int, Point]:
    """Grow one thread; at each size, the medians of its last 10 turns and its bytes."""
    thread_id, step = thread
    timings: list[float] = []
    prunes: list[float] = []
    results = {}
    for i in range(1, max(sizes) + 1):
        started = time.perf_counter()
        prunes.append(await step(i))
        timings.append((time.perf_counter() - started) * 1000 - prunes[-1])
        if i in sizes:
            async with db.pool.connection() as conn:
                row = await (await conn.execute(SIZE_SQL, {"t": thread_id})).fetchone()
            stored = int(row["stored"]) if row else 0
            results[i] = (median(timings[-10:]), stored, median(prunes[-10:]))
    return results


def table(sizes: list[int], rows: dict[str, dict[int, Point]]) -> str:
    names = " | ".join(rows)
    lines = [f"| turns | {names} |", "|---" * (len(rows) + 1) + "|"]
    for n in sizes:
        cells = [cell(r[n]) if n in r else "—" for r in rows.values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cell(point: Point) -> str:
    to_done, stored, prune = point
    after = f" (+{prune:.1f} ms pruning after done)" if prune else ""
    return f"{to_done:.1f} ms{after}, {stored / 1e6:.2f} MB"


def ratios(rows: dict[str, dict[int, Point]], big: int, small: int) -> str:
    ours, stock = rows["Threadline (exit)"], rows["stock MessagesState"]
    both = max(n for n in stock if n in ours)  # the longest thread both were grown to
    lines = [
        f"- Threadline turn {big} / turn {small}: {ours[big][0] / ours[small][0]:.2f}x "
        "(target ≤ 1.3x)",
        f"- stock / Threadline per-turn time at turn {both}: "
        f"{stock[both][0] / ours[both][0]:.1f}x (target ≥ 10x)",
        f"- stored for the {both}-turn thread: Threadline {ours[both][1] / 1e6:.2f} MB "
        f"(target < 2 MB), stock {stock[both][1] / 1e6:.1f} MB "
        f"({stock[both][1] / ours[both][1]:.0f}x)",
    ]
    if big != both:
        lines.append(f"- stored for the {big}-turn thread: Threadline {ours[big][1] / 1e6:.2f} MB")
    return "\n".join(lines)


async def main(sizes: list[int], write: bool, stock_max: int = 1000) -> None:
    with scratch_database() as url:
        db = await open_database(url, pool_size=4)
        try:
            rows = {
                # Beyond ~1,000 turns the stock pattern needs tens of GB: stop it there.
                "stock MessagesState": await grow(
                    db, await stock_thread(db), [n for n in sizes if n <= stock_max]
                ),
                "Threadline (exit)": await grow(db, await threadline_thread(db, "exit"), sizes),
                "Threadline (async)": await grow(db, await threadline_thread(db, "async"), sizes),
            }
        finally:
            await db.close()
        report = (
            "## turn_cost\n\n"
            f"`.venv/bin/python -m bench.turn_cost --turns {','.join(map(str, sizes))}`"
            f" on {machine(url)}.\n\n"
            "Per-turn time is the median of the last 10 turns when the thread reaches that "
            "size; stored is the thread's rows in the checkpoint tables plus, for Threadline, "
            "its journal (`pg_column_size`).\n\n"
            f"{table(sizes, rows)}\n\n{ratios(rows, max(sizes), min(sizes))}\n\n"
            f"{READING}"
        )
    print(report)
    if write:
        write_section("turn_cost", report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", default="10,100,1000")
    parser.add_argument("--stock-max", type=int, default=1000, help="grow stock no further")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    asyncio.run(main(sorted(int(n) for n in args.turns.split(",")), args.write, args.stock_max))
