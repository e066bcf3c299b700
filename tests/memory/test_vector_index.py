"""Migration 0010: embeddings as halfvec, in an index that answers the nearest
search alone; on the embedded PostgreSQL 18 (pgvector), and on the usual test
server, which may have no pgvector."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from memory import recall
from memory.db import Database, libpq_url, open_database, sqlalchemy_url
from memory.embeddings import LocalEmbedder, Vector, unit
from memory.memories import MemoryDraft, MemoryStore
from memory.schema import alembic_config, migrate_sync
from memory.vectors import (
    COVERED_DIMENSIONS,
    Vectors,
    nearest,
    nearest_of_kind,
    nearest_sql,
    vector_literal,
)
from tests.memory.test_vectors import FACTS, FILLER, seed, store_with
from tests.support.database import throwaway_database
from tests.support.users import create_user

QUESTIONS = [question for _, question in FACTS] + ["where do I live?", "what is on next week?"]


def migrate(url: str, revision: str) -> None:
    """Alembic up or down to `revision`, as migrate_sync runs it (one connection)."""
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            if revision == "head":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            conn.commit()
    finally:
        engine.dispose()


def embedding_column(url: str) -> tuple[str, str] | None:
    """The embedding column's type and storage, or None without one."""
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod), attstorage FROM pg_attribute "
            "WHERE attrelid = 'memories'::regclass AND attname = 'embedding' AND NOT attisdropped"
        ).fetchone()
    return (row[0], row[1]) if row else None


def indexes(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'memories'")
        return {row[0] for row in rows.fetchall()}


@pytest.fixture
def own_vector_url(vector_server: str) -> Iterator[str]:
    """A database of its own on the pgvector server, migrated to head."""
    with throwaway_database(vector_server) as url:
        migrate_sync(url)
        yield url


async def nearest_ids(db: Database, user: str, vector: Vector, model: str) -> list[str]:
    return [row.id for row in await nearest(db, user, model, vector, 10)]


def test_embeddings_are_halfvec_inside_the_row_and_in_the_index(vector_url: str) -> None:
    assert embedding_column(vector_url) == ("halfvec", "m")
    found = indexes(vector_url)
    assert "ix_memories_user_nearest" in found
    assert "ix_memories_user_embedding_model" not in found


async def test_halfvec_finds_the_nearest_memories_exact_floats_find(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    store = await store_with(vector_db, local_embedder)
    user = await create_user(vector_db, "exact@example.com")
    contents = FILLER + [fact for fact, _ in FACTS]
    await seed(store, user, contents)
    async with vector_db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, content FROM memories"))).all()
    ids = [row.id for row in rows]
    floats = await local_embedder.passages([row.content for row in rows])
    for question in QUESTIONS:
        [asked] = await local_embedder.queries([question])
        # Unit vectors: the cosine is the dot product.
        score = [sum(a * b for a, b in zip(asked, v, strict=True)) for v in floats]
        exact = [ids[i] for i in sorted(range(len(ids)), key=lambda i: -score[i])[:10]]
        assert await nearest_ids(vector_db, user, asked, LocalEmbedder.model) == exact, question


async def test_the_nearest_search_reads_the_index_alone(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    store = await store_with(vector_db, local_embedder)
    user = await create_user(vector_db, "plan@example.com")
    await seed(store, user, FILLER[:6])
    [asked] = await local_embedder.queries(["Which city am I based in?"])
    params = {
        "user_id": user,
        "model": LocalEmbedder.model,
        "query": vector_literal(asked),
        "limit": 10,
        "kind": "fact",
    }
    # A table this small is cheaper to scan; the question is whether the index
    # can answer the search, whatever the planner picks here.
    off = ["SET LOCAL enable_seqscan = off", "SET LOCAL enable_bitmapscan = off"]
    async with vector_db.pool.connection() as conn, conn.transaction():
        for setting in off:
            await conn.execute(setting)
        found = await conn.execute("EXPLAIN " + nearest_sql(asked), params)
        plans = [[row["QUERY PLAN"] for row in await found.fetchall()]]
    async with vector_db.engine.begin() as conn:
        for setting in off:
            await conn.execute(text(setting))
        search = nearest_of_kind(asked)
        plans.append(list((await conn.execute(text(f"EXPLAIN {search.text}"), params)).scalars()))
    for plan in plans:
        assert any("Index Only Scan using ix_memories_user_nearest" in line for line in plan)


class WideEmbedder:
    """A model wider than the index holds (OpenAI's text-embedding-3-small has
    1,536 dimensions): words hashed into slots."""

    model = "test/wide-1536"
    dimensions = 1536

    def _embed(self, texts: list[str]) -> list[Vector]:
        vectors = []
        for text_ in texts:
            vector = [0.0] * self.dimensions
            for word in text_.lower().split():
                vector[sum(word.strip("?.,:").encode()) * 7 % self.dimensions] += 1.0
            vectors.append(unit(vector))
        return vectors

    async def queries(self, texts: list[str]) -> list[Vector]:
        return self._embed(texts)

    async def passages(self, texts: list[str]) -> list[Vector]:
        return self._embed(texts)

    async def close(self) -> None:
        pass


async def test_a_model_wider_than_the_index_is_saved_and_searched(vector_db: Database) -> None:
    assert WideEmbedder.dimensions > COVERED_DIMENSIONS
    store = await store_with(vector_db, WideEmbedder())
    user = await create_user(vector_db, "wide@example.com")
    # Saving would fail if the index took these rows (a B-tree entry over 2,704 bytes).
    await seed(store, user, ["User said: my cello teacher is Dr. Hansen", *FILLER[:8]])
    # No word of the question is long enough for full text: found by the vectors.
    assert recall.search_terms("Who is my dr?") is None
    loaded = await store.load_relevant(user, "Who is my dr?")
    relevant = [m["content"] for m in loaded if m["relevant"]]
    assert relevant[0] == "User said: my cello teacher is Dr. Hansen"


async def test_a_vector_given_or_on_its_way_loads_the_same(
    vector_db: Database, local_embedder: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await store_with(vector_db, local_embedder)
    user = await create_user(vector_db, "given@example.com")
    await seed(store, user, FILLER + [fact for fact, _ in FACTS])
    full_text_done = asyncio.Event()
    full_text = recall._recent_and_matching

    async def watched(*args: Any, **kwargs: Any) -> list[Any]:
        try:
            return await full_text(*args, **kwargs)
        finally:
            full_text_done.set()

    monkeypatch.setattr(recall, "_recent_and_matching", watched)
    for _, question in FACTS[:3]:
        [vector] = await local_embedder.queries([question])

        async def later(vector: Vector = vector) -> Vector:
            await full_text_done.wait()  # the vector comes after the full-text statement
            return vector

        given = await recall.load_relevant(
            vector_db, user, question, query_vector=vector, model=LocalEmbedder.model
        )
        full_text_done.clear()
        awaited = await recall.load_relevant(
            vector_db, user, question, query_vector=later(), model=LocalEmbedder.model
        )
        assert given == awaited
        assert any(m["relevant"] for m in given)


async def test_migration_0010_round_trip(
    own_vector_url: str, local_embedder: LocalEmbedder
) -> None:
    db = await open_database(own_vector_url, pool_size=2)
    try:
        store = await store_with(db, local_embedder)
        user = await create_user(db, "trip@example.com")
        await seed(store, user, FILLER[:10] + [fact for fact, _ in FACTS])
        [asked] = await local_embedder.queries(["Which city am I based in?"])
        before = await nearest_ids(db, user, asked, LocalEmbedder.model)
    finally:
        await db.close()

    migrate(own_vector_url, "0009")
    assert embedding_column(own_vector_url) == ("vector", "m")
    assert "ix_memories_user_embedding_model" in indexes(own_vector_url)
    assert "ix_memories_user_nearest" not in indexes(own_vector_url)
    migrate(own_vector_url, "head")
    assert embedding_column(own_vector_url) == ("halfvec", "m")
    assert "ix_memories_user_nearest" in indexes(own_vector_url)

    db = await open_database(own_vector_url, pool_size=2)
    try:
        assert await nearest_ids(db, user, asked, LocalEmbedder.model) == before
        vectors = Vectors(db, local_embedder)
        assert await vectors.open() == "hybrid" and await vectors.owed() == 0
        await MemoryStore(db, vectors).add(user, MemoryDraft("fact", None, "User said: hi"))
        assert await vectors.owed() == 0
    finally:
        await db.close()


def test_migration_0010_without_pgvector_changes_nothing(pg_server: str) -> None:
    """On a server without pgvector (the Debian PostgreSQL 15 here) there is no
    embedding column: 0010 goes up and down without touching the table."""
    with throwaway_database(pg_server) as url:
        migrate_sync(url)
        column = embedding_column(url)
        migrate(url, "0009")
        migrate(url, "head")
        assert embedding_column(url) == column
