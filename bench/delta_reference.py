"""A second reference for growth: LangGraph's own `DeltaChannel` (beta), which
checkpoints only each step's new messages, beside the stock `add_messages`
channel; the two threads grow in lockstep, one turn each per round.

    .venv/bin/python -m bench.delta_reference [--turns 10,100,1000] [--write]

Messages as in bench/turn_cost: 120-character questions and 320-character
answers of varied words (so compression flatters neither side), from a fake
model that costs next to nothing. Threadline's own figures are in turn_cost.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from itertools import count
from typing import Annotated, Any, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import add_messages

from bench.common import machine, median, run_on_server_loop, scratch_database, write_section
from memory.db import Database, open_database

STORED_SQL = """
SELECT coalesce((SELECT sum(pg_column_size(c.*)) FROM checkpoints c WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(b.*)) FROM checkpoint_blobs b WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(w.*)) FROM checkpoint_writes w WHERE thread_id = %(t)s), 0)
 AS stored
"""


def words(seed: int, length: int) -> str:
    rng = random.Random(seed)
    return " ".join(f"{rng.getrandbits(40):x}" for _ in range(length // 10))[:length]


def add_all(state: list[AnyMessage], writes: Sequence[Any]) -> list[AnyMessage]:
    """`add_messages` over a batch of writes (DeltaChannel replays them in batches)."""
    for write in writes:
        state = add_messages(state, write)
    return state


class DeltaState(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(add_all)]


def compile_graph(state: type[Any], db: Database) -> Any:
    model = GenericFakeChatModel(messages=(AIMessage(words(-i, 320)) for i in count()))

    async def answer(current: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(current["messages"])]}

    builder = StateGraph(state)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    return builder.compile(checkpointer=AsyncPostgresSaver(db.pool))


async def grow(db: Database, sizes: list[int]) -> dict[str, dict[int, tuple[float, int]]]:
    graphs = {"stock add_messages": MessagesState, "DeltaChannel (beta)": DeltaState}
    threads = {name: (compile_graph(s, db), str(uuid.uuid4())) for name, s in graphs.items()}
    timings: dict[str, list[float]] = {name: [] for name in threads}
    results: dict[str, dict[int, tuple[float, int]]] = {name: {} for name in threads}
    for i in range(1, max(sizes) + 1):
        for name, (graph, thread_id) in threads.items():
            config = {"configurable": {"thread_id": thread_id}}
            started = time.perf_counter()
            await graph.ainvoke({"messages": [HumanMessage(words(i, 120))]}, config)
            timings[name].append((time.perf_counter() - started) * 1000)
            if i in sizes:
                async with db.pool.connection() as conn:
                    row = await (await conn.execute(STORED_SQL, {"t": thread_id})).fetchone()
                results[name][i] = (median(timings[name][-10:]), int(row["stored"]) if row else 0)
    return results


async def main(sizes: list[int], write: bool) -> None:
    with scratch_database() as url:
        db = await open_database(url, pool_size=4)
        try:
            rows = await grow(db, sizes)
        finally:
            await db.close()
        facts = machine(url)
    lines = ["| turns | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for n in sizes:
        cells = [f"{r[n][0]:.1f} ms, {r[n][1] / 1e6:.2f} MB" for r in rows.values()]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    report = (
        "## growth: LangGraph's DeltaChannel as a second reference\n\n"
        f"`.venv/bin/python -m bench.delta_reference --turns {','.join(map(str, sizes))}` "
        f"on {facts}. Median ms of the last 10 turns and the thread's stored bytes "
        "(checkpoint tables), the two graphs grown in lockstep:\n\n" + "\n".join(lines) + "\n"
    )
    print(report)
    if write:
        write_section("delta_reference", report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", default="10,100,1000")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    run_on_server_loop(main(sorted(int(n) for n in args.turns.split(",")), args.write))
