"""bench.memory_load with vectors (`--vectors`): the same data and questions on
an embedded PostgreSQL 18 with pgvector, every memory embedded, and planning's
hybrid load timed.

    nice -n 19 .venv/bin/python -m bench.memory_load --vectors [--sizes ...] [--others ...]
        [--calls 200] [--turns 50] [--explain] [--write]

Other users' rows get random unit vectors (a pool of `POOL` made in SQL, one
per row in turn) under the local model's name: the nearest search reads only
the measured user's rows (the index leads with user_id), so other users' rows
are there for the table's size, not their meaning. The measured users' rows are
embedded with the real local embedder (multilingual-e5-small) through
`Vectors.embed_owed`, as the server does after a write, and the questions too.

Timed per size, interleaved call by call: full text alone; the hybrid load given
the question's vector (`recall.load_relevant(..., query_vector=...)`, what the
database does); the same for a twin of the user whose embeddings are stored
inline (`SET STORAGE MAIN`, a proposed migration: see `twin_users`); and
`MemoryStore.load_relevant` as planning calls it, which also embeds the
question. The nearest search alone is timed in its shape before this run's
change (`NEAREST_BEFORE`), as it is, and on the twin. Embedding a question is
timed on its own. The first-token figure is memory_load's, for full text and
for hybrid with the question embedded first (as before) or beside the
full-text statement (as now).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

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
from memory.db import Database, libpq_url, open_database
from memory.embedded import EmbeddedPostgres
from memory.embeddings import LocalEmbedder, Vector
from memory.memories import MemoryStore
from memory.vectors import NEAREST, Vectors, vector_literal

POOL = 4096  # distinct random vectors among the other users' rows
DIMENSIONS = 384  # multilingual-e5-small's
POOL_SQL = f"""
CREATE TEMP TABLE bench_pool AS
SELECT i, l2_normalize(array_agg(random() - 0.5)::vector) AS v
FROM generate_series(0, {POOL - 1}) i, generate_series(1, {DIMENSIONS}) d GROUP BY i;
CREATE UNIQUE INDEX ON bench_pool (i);
"""
# The nearest search as it was before this benchmark: the distance computed
# twice per row (for the similarity and for the order).
NEAREST_BEFORE = text(
    "SELECT id, 1 - (embedding <=> CAST(:query AS vector)) AS similarity FROM memories "
    "WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL "
    "AND kind IN ('entity', 'fact', 'preference') "
    "ORDER BY embedding <=> CAST(:query AS vector) LIMIT :limit"
)
# A twin of each measured user, its embeddings inline in the row: with the
# column's default storage (EXTERNAL), a row over ~2 kB moves its embedding to
# the TOAST table, and the nearest search then reads it from there.
TWIN_SQL = (
    "INSERT INTO users (id, email, password_hash, display_name) "
    "VALUES (%(twin)s, 'twin-' || %(uid)s::text || '@bench.example', '-', 'Ada')",
    "INSERT INTO memories (id, user_id, kind, key, content, source_session_id, created_at, "
    "updated_at, embedding, embedding_model) "
    "SELECT gen_random_uuid()::text, %(twin)s, kind, key, content, source_session_id, "
    "created_at, updated_at, embedding::real[]::vector, embedding_model "
    "FROM memories WHERE user_id = %(uid)s",
)
TARGET_LOAD_MS = 10
TARGET_FIRST_TOKEN_MS = 15


def random_vectors(model: str) -> Any:
    """load_data's `fill`: the pool of unit vectors other users' rows take."""

    def fill(conn: psycopg.Connection[Any]) -> dict[str, Any]:
        conn.execute(POOL_SQL)
        return {"model": model, "pool": POOL}

    return fill


async def embed_targets(vectors: Vectors, targets: dict[int, str]) -> tuple[int, float]:
    """Embed the measured users' rows as the server would; (rows, seconds)."""
    started, done = time.perf_counter(), 0
    for n, user_id in targets.items():
        while embedded := await vectors.embed_owed(user_id, batch=128):
            done += embedded
        print(f"  user with {n:,} memories embedded ({done:,} rows so far)", flush=True)
    return done, time.perf_counter() - started


def twin_users(conn: psycopg.Connection[Any], targets: dict[int, str]) -> dict[str, str]:
    """The proposed migration, on this throwaway database: `ALTER TABLE memories
    ALTER COLUMN embedding SET STORAGE MAIN` (a catalog change; rows take it when
    next written), then a copy of each measured user written under it."""
    conn.execute("ALTER TABLE memories ALTER COLUMN embedding SET STORAGE MAIN")
    twins = {}
    for uid in targets.values():
        twins[uid] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"twin-of-{uid}"))
        for sql in TWIN_SQL:
            conn.execute(sql, {"uid": uid, "twin": twins[uid]})
    return twins


async def time_questions(vectors: Vectors, rounds: int) -> list[float]:
    """Embedding one question (the embedder's thread), in ms, after a warm-up."""
    times = []
    for i in range(len(QUESTIONS) + rounds):
        started = time.perf_counter()
        await vectors.query_vector(QUESTIONS[i % len(QUESTIONS)])
        if i >= len(QUESTIONS):
            times.append((time.perf_counter() - started) * 1000)
    return times


def given_vectors(
    db: Database, model: str, asked: dict[str, Vector], twins: dict[str, str] | None = None
) -> Loader:
    """The hybrid load with the question already embedded: the database's part;
    with `twins`, for the measured user's twin."""

    async def load(user_id: str, query: str) -> list[dict[str, Any]]:
        user_id = twins[user_id] if twins is not None else user_id
        return await recall.load_relevant(
            db, user_id, query, query_vector=asked[query], model=model
        )

    return load


def embedding_first(db: Database, vectors: Vectors) -> Loader:
    """MemoryStore.load_relevant as it was: the question embedded, then the load."""

    async def load(user_id: str, query: str) -> list[dict[str, Any]]:
        vector = await vectors.query_vector(query)
        return await recall.load_relevant(
            db, user_id, query, query_vector=vector, model=vectors.model
        )

    return load


@contextlib.contextmanager
def plain_connection(url: str) -> Iterator[psycopg.Connection[Any]]:
    """psycopg with no prepared statements: each search planned for its values."""
    with psycopg.connect(libpq_url(url), autocommit=True, prepare_threshold=None) as conn:
        yield conn


def searches(twins: dict[str, str]) -> dict[str, tuple[str, Any]]:
    """The nearest search alone, per shape: (SQL, how to pick the user)."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    before, now = (
        str(NEAREST_BEFORE.compile(dialect=dialect)),
        str(NEAREST.compile(dialect=dialect)),
    )
    return {
        "before (distance twice)": (before, lambda uid: uid),
        "now": (now, lambda uid: uid),
        "now, inline (proposed)": (now, lambda uid: twins[uid]),
    }


def time_searches(
    url: str, twins: dict[str, str], user_id: str, model: str, asked: dict[str, Vector], calls: int
) -> dict[str, Result]:
    """The nearest search alone in each shape, interleaved call by call."""
    shapes = searches(twins)
    results = {name: Result() for name in shapes}
    with plain_connection(url) as conn:
        for i in range(20 + calls):
            question = QUESTIONS[i % len(QUESTIONS)]
            for name, (sql, user) in shapes.items():
                params = {"user_id": user(user_id), "model": model, "limit": recall.MATCHES}
                params["query"] = vector_literal(asked[question])
                started = time.perf_counter()
                found = conn.execute(sql, params).fetchall()
                elapsed = (time.perf_counter() - started) * 1000
                if i >= 20:
                    results[name].timings.append(elapsed)
                    results[name].loaded.append(len(found))
    return results


def explain_searches(
    url: str, twins: dict[str, str], user_id: str, model: str, asked: dict[str, Vector]
) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the nearest search in each shape, the
    question's vector elided."""
    plans = {}
    with plain_connection(url) as conn:
        for name, (sql, user) in searches(twins).items():
            params = {"user_id": user(user_id), "model": model, "limit": recall.MATCHES}
            params["query"] = vector_literal(asked[QUESTIONS[0]])
            conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)  # warm
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
            plans[name] = "\n".join(re.sub(r"'\[[^\]]*\]'", "'[…]'", str(r[0])) for r in rows)
    return plans


def plan_summary(plan: str) -> str:
    """The buffers the search touched, from its plan (its one timing is noise
    beside the timed calls)."""
    lines = [line.strip() for line in plan.splitlines()]
    buffers = next((line for line in lines if line.startswith("Buffers:")), "")
    blocks = next((line for line in lines if line.startswith("Heap Blocks:")), "")
    return f"{buffers.removeprefix('Buffers: ')} ({blocks.lower()})"


def server_facts(url: str) -> dict[str, Any]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
            "current_setting('shared_buffers'), "
            "(SELECT count(*) FROM memories m WHERE pg_column_size(m.*) > 2032), "
            "pg_size_pretty(pg_total_relation_size('memories'))"
        ).fetchone()
    assert row is not None
    return {"pgvector": row[0], "shared_buffers": row[1], "wide": row[2], "size": row[3]}


async def measure(args: argparse.Namespace, url: str, targets: dict[int, str]) -> dict[str, Any]:
    """Everything timed on the filled database."""
    largest = max(args.sizes)
    embedder = LocalEmbedder()
    db = await open_database(url, pool_size=4)
    try:
        vectors = Vectors(db, embedder)
        assert await vectors.open() == "hybrid", "no pgvector on the embedded server"
        model = embedder.model
        embedded, embed_seconds = await embed_targets(vectors, targets)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            twins = twin_users(conn, targets)
            vacuum(conn)
        question_ms = await time_questions(vectors, 100)
        asked = {q: v for q in QUESTIONS if (v := await vectors.query_vector(q)) is not None}
        full_text, hybrid = MemoryStore(db), MemoryStore(db, vectors)
        variants: dict[str, Loader] = {
            "full text": full_text.load_relevant,
            "hybrid, question embedded": given_vectors(db, model, asked),
            "hybrid, question embedded, inline (proposed)": given_vectors(db, model, asked, twins),
            "hybrid, embedding first (before)": embedding_first(db, vectors),
            "hybrid, embedding beside full text (now)": hybrid.load_relevant,
        }
        loads: dict[str, dict[int, Result]] = {name: {} for name in variants}
        nearest: dict[str, dict[int, Result]] = {}
        for n in args.sizes:
            for name, result in (await time_loads(variants, targets[n], args.calls)).items():
                loads[name][n] = result
                print(f"  {n:,}: {name} {result.cell()}", flush=True)
            timed = time_searches(url, twins, targets[n], model, asked, args.calls)
            for name, result in timed.items():
                nearest.setdefault(name, {})[n] = result
                print(f"  {n:,}: nearest search {name} {result.cell()}", flush=True)
        plans = explain_searches(url, twins, targets[largest], model, asked)
        if args.explain:
            for name, plan in plans.items():
                print(f"-- nearest search, {name}\n{plan}\n", flush=True)
        tokens = await first_token(
            {
                "full text": (db, full_text.load_relevant),
                "hybrid, embedding first (before)": (db, embedding_first(db, vectors)),
                "hybrid, embedding beside full text (now)": (db, hybrid.load_relevant),
            },
            targets[largest],
            args.turns,
        )
    finally:
        await db.close()
        await embedder.close()
    return {
        "loads": loads,
        "nearest": nearest,
        "plans": plans,
        "tokens": tokens,
        "question_ms": question_ms,
        "embedded": embedded,
        "embed_seconds": embed_seconds,
        **server_facts(url),
    }


async def run(args: argparse.Namespace) -> str:
    run_started, load_average = time.perf_counter(), os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="tl_bench_vec_"))
        server = EmbeddedPostgres(Path(scratch) / "pg", database="postgres")
        server_url = server.start()
        stack.callback(server.stop)
        url = stack.enter_context(scratch_database(server_url))
        print(f"loading {args.others:,} memories of other users and users of {args.sizes}")
        started = time.perf_counter()
        targets = load_data(url, args.others, args.sizes, fill=random_vectors(LocalEmbedder.model))
        load_seconds = time.perf_counter() - started
        found = await measure(args, url, targets)
        found["facts"] = machine(url)
    found["load_average"] = (load_average, os.getloadavg()[0])
    found["load_seconds"] = load_seconds
    found["run_seconds"] = time.perf_counter() - run_started
    return report(args, found)


def report(args: argparse.Namespace, found: dict[str, Any]) -> str:
    largest = max(args.sizes)
    loads, tokens = found["loads"], found["tokens"]
    p50 = percentile(loads["hybrid, question embedded"][largest].timings, 50)
    inline = percentile(loads["hybrid, question embedded, inline (proposed)"][largest].timings, 50)
    command = "nice -n 19 .venv/bin/python -m bench.memory_load --vectors"
    if args.others != 1_000_000 or args.sizes != [100, 1000, 10000]:
        command += f" --sizes {','.join(map(str, args.sizes))} --others {args.others}"
    question_ms = found["question_ms"]
    start_load, end_load = found["load_average"]
    tokens_table = "\n".join(
        f"| {name} | {m['memory off']:.1f} ms | {m['memory on']:.1f} ms | "
        f"{m['memory on'] - m['memory off']:+.1f} ms |"
        for name, m in tokens.items()
    )
    now = tokens["hybrid, embedding beside full text (now)"]
    added = now["memory on"] - now["memory off"]
    plans = "\n".join(f"  - {name}: {plan_summary(p)}" for name, p in found["plans"].items())
    return f"""### memory_load with vectors

`{command} --write` on {found["facts"]} (the embedded server, pgvector {found["pgvector"]},
shared_buffers {found["shared_buffers"]}, the table {found["size"]}); load average
{start_load:.1f} at the start and {end_load:.1f} at the end: other sessions ran their tests
on this 2-core machine throughout, and this run was niced, so every figure is an upper
bound. Filling the database took {found["load_seconds"]:.0f} s, embedding the measured users'
{found["embedded"]:,} rows with the local embedder {found["embed_seconds"]:.0f} s
({found["embedded"] / found["embed_seconds"]:.0f} rows/s, one thread), the whole run
{found["run_seconds"]:.0f} s.

The same users and questions as above, among {args.others:,} memories of
{args.others // 100:,} other users, every row embedded: other users' rows with random unit
vectors ({POOL:,} distinct, made in SQL; the nearest search never reads them), the measured
users' rows and the questions with the real local embedder (multilingual-e5-small, 384
dimensions). {found["wide"]:,} rows are wider than 2 kB, so their embedding lives in the
TOAST table (the column's default storage). Loaders interleaved call by call,
{args.calls} calls per size after 20 warm-up calls: full text alone; hybrid given the
question's vector (the database's part: the full-text statement, the nearest search, the
rows it adds); the same for a twin of the user written after `ALTER TABLE memories ALTER
COLUMN embedding SET STORAGE MAIN` (embeddings inline: a proposed migration, not applied);
hybrid as planning calls it, embedding the question too: first, then the load (before), or
beside the full-text statement (now):

{size_table(loads, args.sizes)}

{question_table(loads, largest)}

The nearest search alone (`memory/vectors.py: NEAREST`), before this change (the distance
computed twice per row, so a TOASTed embedding read twice), now, and now on the inline twin:

{size_table(found["nearest"], args.sizes)}

- p50 at {largest:,} memories, hybrid given the vector: {p50:.2f} ms (target
  < {TARGET_LOAD_MS} ms: {"met" if p50 < TARGET_LOAD_MS else "missed"}); with embeddings
  inline: {inline:.2f} ms ({"met" if inline < TARGET_LOAD_MS else "missed"})
- embedding one question (local embedder, its own thread, off the event loop): p50
  {percentile(question_ms, 50):.1f} ms, p99 {percentile(question_ms, 99):.1f} ms over
  {len(question_ms)} questions
- EXPLAIN (ANALYZE, BUFFERS) of the nearest search at {largest:,}: a bitmap scan of the
  user's rows of the three kinds (`ix_memories_user_kind_updated`), then a top-10 sort;
  the buffers it touched:
{plans}

Time to the first `token` for the {largest:,}-memory user (as above; the hybrid loaders
embed the question, first or beside the full-text statement):

| loader | memory off | memory on | added by memory loading |
|---|---|---|---|
{tokens_table}

- added to the first token by hybrid loading (now): {added:+.1f} ms (target
  < {TARGET_FIRST_TOKEN_MS} ms: {"met" if added < TARGET_FIRST_TOKEN_MS else "missed"})
"""


async def main(args: argparse.Namespace) -> None:
    body = await run(args)
    print()
    print(body)
    if args.write:
        write_section("memory_load_vectors", body)
