"""bench/peer's sides: the SDK script both servers get, what one turn measures,
and the bytes a thread leaves in each server's database."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamMode
from psycopg import AsyncConnection

from bench.common import median

STREAM_MODE: list[StreamMode] = ["messages-tuple", "values"]
WINDOW = 10  # each figure is the median of 10 turns; controls start a thread every 10
WIDE = 100  # and, on long runs, of 100 turns
WARMUP_TURNS = 10  # on a thread of their own, before the measured thread
VACUUM_EVERY = 100  # rounds between VACUUMs, when the server runs no autovacuum
CHECKPOINT_ROWS = """
 coalesce((SELECT sum(pg_column_size(c.*)) FROM checkpoints c WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(b.*)) FROM checkpoint_blobs b WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(w.*)) FROM checkpoint_writes w WHERE thread_id = %(t)s), 0)
"""
# The thread's rows in each part of each server's schema.
AEGRA_ROWS = {
    "checkpoints": CHECKPOINT_ROWS,
    "thread and runs (with each run's output)": """
 coalesce((SELECT sum(pg_column_size(h.*)) FROM thread h WHERE thread_id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(r.*)) FROM runs r WHERE thread_id = %(t)s), 0)""",
}  # Aegra 0.11 keeps a run's events in memory (its replay buffer), no longer in `run_events`
THREADLINE_ROWS = {
    "checkpoints": CHECKPOINT_ROWS,
    "session and journal": """
 coalesce((SELECT sum(pg_column_size(s.*)) FROM chat_sessions s WHERE id = %(t)s), 0)
 + coalesce((SELECT sum(pg_column_size(m.*)) FROM chat_messages m WHERE session_id = %(t)s), 0)""",
    "long-term memories from it": """
 coalesce((SELECT sum(pg_column_size(m.*)) FROM memories m WHERE source_session_id = %(t)s), 0)""",
    "runs": """
 coalesce((SELECT sum(pg_column_size(r.*)) FROM agent_runs r WHERE session_id = %(t)s), 0)""",
    "run event log (newest 10 runs)": """
 coalesce((SELECT sum(pg_column_size(e.*)) FROM agent_run_events e
           JOIN agent_runs r ON r.id = e.run_id WHERE r.session_id = %(t)s), 0)""",
}
TABLES_SQL = """
SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'
"""


@dataclass
class Turn:
    """One streamed run, as the client saw it."""

    total_ms: float
    first_chunk_ms: float
    chunks: int  # AIMessageChunks streamed
    answer_chars: int
    values_messages: int  # messages in the last `values` event


@dataclass
class Stored:
    """Bytes at one thread length: the thread's rows by part; each table's growth."""

    rows: dict[str, int]
    grew: dict[str, int]

    @property
    def tables(self) -> int:
        return sum(self.grew.values())

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass
class Side:
    """One server, the thread grown on it (or, for a control, its fresh threads),
    and what was measured."""

    name: str
    client: LangGraphClient
    assistant: str
    database_url: str
    rows_sql: dict[str, str]
    log_path: Path
    pid: int  # the server's process, whose tree's RSS is sampled
    url: str  # the server's, and the key to it (None: Aegra, no auth), for more clients
    api_key: str | None
    fresh: bool = False  # a control: a new thread every WINDOW turns
    thread_id: str = ""
    tables_before: dict[str, int] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    points: dict[int, Stored] = field(default_factory=dict)
    rss: dict[int, int] = field(default_factory=dict)  # bytes at turn n; 0: after warm-up

    def p50(self, what: str, upto: int, first: bool = False, window: int = WINDOW) -> float:
        """Median of `what` over the `window` turns up to turn `upto` (or from turn 1)."""
        span = self.turns[:window] if first else self.turns[max(0, upto - window) : upto]
        return median([getattr(t, what) for t in span])


def question(i: int) -> str:
    return f"turn {i}: how does a journal keep message {i} durable across a restart?"


def since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def turn(side: Side, thread_id: str, i: int) -> Turn:
    return await stream_turn(side.client, side.assistant, thread_id, i, side.name)


async def stream_turn(
    client: LangGraphClient, assistant: str, thread_id: str, i: int, server: str
) -> Turn:
    """The script, the same for every server: one run streamed to its end; what it
    took and what came back."""
    first, chunks, values = math.nan, 0, {}
    ask: Any = {"messages": [{"type": "human", "content": question(i)}]}
    started = time.perf_counter()
    async for part in client.runs.stream(thread_id, assistant, input=ask, stream_mode=STREAM_MODE):
        if part.event == "error":
            raise RuntimeError(f"{server}, turn {i}: {part.data}")
        if part.event == "messages" and part.data[0].get("type") == "AIMessageChunk":
            first = since(started) if chunks == 0 else first
            chunks += 1
        elif part.event == "values":
            values = part.data
    total = since(started)
    messages: list[dict[str, Any]] = values.get("messages", [])
    answer = str(messages[-1]["content"]) if messages else ""
    return Turn(total, first, chunks, len(answer), len(messages))


async def new_thread(side: Side) -> str:
    return await create_thread(side.client)


async def create_thread(client: LangGraphClient) -> str:
    thread_id: str = (await client.threads.create())["thread_id"]
    return thread_id


# --- the bytes ---------------------------------------------------------------------------


async def stored(side: Side) -> Stored:
    """The thread's rows by part, and every table's growth since `tables_before`."""
    async with await AsyncConnection.connect(side.database_url) as conn:
        rows = {}
        for part, sql in side.rows_sql.items():
            row = await (await conn.execute(f"SELECT {sql}", {"t": side.thread_id})).fetchone()
            rows[part] = int(row[0]) if row and row[0] is not None else 0
    now = await table_sizes(side.database_url)
    return Stored(rows, {name: n - side.tables_before.get(name, 0) for name, n in now.items()})


async def table_sizes(url: str) -> dict[str, int]:
    """Every table's size, its indexes and TOAST included."""
    async with await AsyncConnection.connect(url) as conn:
        rows = await (await conn.execute(TABLES_SQL)).fetchall()
    return {str(name): int(bytes_) for name, bytes_ in rows}


async def autovacuum_is_on(url: str) -> bool:
    async with await AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("SHOW autovacuum")).fetchone()
    return row is not None and row[0] == "on"


async def vacuum(sides: list[Side]) -> float:
    """VACUUM every side's database (standing in for autovacuum); seconds it took."""
    started = time.perf_counter()
    for side in sides:
        async with await AsyncConnection.connect(side.database_url, autocommit=True) as conn:
            await conn.execute("VACUUM")
    return time.perf_counter() - started
