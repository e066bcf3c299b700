"""Memories found by meaning: the `embedding` column (migration 0005), kept
filled by the configured embedder, and the nearest memories to a question.

A row is owed an embedding while its `embedding_model` is not the current
model's name: new rows, edited rows (a write clears the name) and, after a
change of model, every row. Writes embed their own user's owed rows right
away, except a conversation's summary: it is rewritten after every turn of its
conversation and is the longest text there is (up to 4,000 characters, about
two seconds of the local model's CPU), so it is embedded once it has rested
`summary_rest_s` (`embed_later`); until then it is found by its words.
`backfill` does the rest in batches (at start, and from the CLI with
progress), so a model change re-embeds in the background.

Since migration 0010 the column is `halfvec` (pgvector 0.7 and later: two bytes
a dimension, the same nearest memories as exact floats: tests/memory/
test_vector_index.py) and an index holds each row's embedding beside its user,
model and kind, so the nearest search reads that index alone. The statements
work on either type: a row's embedding is written as `vector` and cast to the
column's type, a search's vector takes the column's type (halfvec, or vector
where pgvector is older than 0.7).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import TextClause, text

from memory.db import Database
from memory.embeddings import Embedder, EmbeddingFailed, Vector

log = logging.getLogger(__name__)

_HAS_COLUMN = text(
    "SELECT 1 FROM pg_attribute WHERE attrelid = 'memories'::regclass "
    "AND attname = 'embedding' AND NOT attisdropped"
)
SUMMARY_REST_S = 30.0  # a summary unchanged this long is embedded (see above)
_OWED = text(
    "SELECT id, coalesce(key, '') AS key, content FROM memories "
    "WHERE embedding_model IS DISTINCT FROM :model "
    "AND (CAST(:user_id AS text) IS NULL OR user_id = :user_id) "
    "AND (kind <> 'summary' OR updated_at <= now() - make_interval(secs => :rest_s)) "
    "ORDER BY updated_at DESC LIMIT :limit"
)
_SUMMARY_OWED = text(
    "SELECT 1 FROM memories WHERE user_id = :user_id AND kind = 'summary' "
    "AND embedding_model IS DISTINCT FROM :model LIMIT 1"
)
_OWED_COUNT = text("SELECT count(*) FROM memories WHERE embedding_model IS DISTINCT FROM :model")
# A row's embedding, unless its content changed since it was embedded.
STORE = text(
    "UPDATE memories SET embedding = CAST(:embedding AS vector), embedding_model = :model "
    "WHERE id = :id AND content = :content"
)
# Embeddings of up to this many dimensions are in migration 0010's index
# (a B-tree entry holds at most 2,704 bytes: a halfvec of 1,024 dimensions and
# the keys fit, whatever the model's name); a wider model's rows are read from
# the table instead.
COVERED_DIMENSIONS = 1024
# One user's memories of the current model nearest a vector, with their
# similarity. The inner query is an index-only scan of that user's entries in
# ix_memories_user_nearest (migration 0010: user, model and kind, then the id and
# the embedding), so it never reads the table, nor another user's rows; it
# computes the distance once per row. The outer one reads the few rows it keeps.
# bench/memory_load --vectors: 10.7 -> 5.0 ms p50 at 10,000 memories.
# The question's vector is a parameter of no stated type: PostgreSQL gives it the
# column's (halfvec, or vector where pgvector is older than 0.7) and parses it once.
# `CAST(... AS vector)` would have a prepared statement's generic plan turn it
# into halfvec again for every row.
_NEAREST = """
SELECT m.id, m.kind, m.key, m.content, m.source_session_id, m.created_at, m.updated_at,
  1 - nearest.distance AS similarity
FROM (
  SELECT id, embedding <=> %(query)s AS distance FROM memories
  WHERE user_id = %(user_id)s AND embedding_model = %(model)s AND embedding IS NOT NULL
  AND {kinds}{covered}
  ORDER BY distance LIMIT %(limit)s
) nearest JOIN memories m ON m.id = nearest.id
ORDER BY nearest.distance
"""
_COVERED = f" AND vector_dims(embedding) <= {COVERED_DIMENSIONS}"  # the index's predicate
# Of the kinds recall reads, on the pool (`nearest`); by the vector's fit in the index.
_RECALLED = {
    covered: _NEAREST.format(
        kinds="kind IN ('entity', 'fact', 'preference')", covered=_COVERED if covered else ""
    )
    for covered in (True, False)
}
# Of one kind, in a session's transaction (memory/same_fact.py): SQLAlchemy's
# placeholders for psycopg's.
_OF_KIND = {
    covered: text(
        re.sub(
            r"%\((\w+)\)s",
            r":\1",
            _NEAREST.format(kinds="kind = %(kind)s", covered=_COVERED if covered else ""),
        )
    )
    for covered in (True, False)
}


def _covered(vector: Vector) -> bool:
    return len(vector) <= COVERED_DIMENSIONS


async def nearest(db: Database, user_id: str, model: str, vector: Vector, limit: int) -> list[Any]:
    """The user's entities, facts and preferences of `model` nearest `vector`,
    with their similarity, best first: rows like recall's, by attribute.

    One statement on the pool (autocommit; prepared, its plan the same for every
    user): it comes between the question's embedding and the first token, where
    a transaction's round trips and the engine's layers added 1.5 ms to its 5
    (memory/db.py: fetch)."""
    params = {"user_id": user_id, "model": model, "query": vector_literal(vector), "limit": limit}
    async with db.pool.connection() as conn:
        cursor = conn.cursor(row_factory=namedtuple_row)
        await cursor.execute(nearest_sql(vector), params)
        return await cursor.fetchall()


def nearest_sql(vector: Vector) -> str:
    """The statement `nearest` runs for `vector`, with psycopg's placeholders."""
    return _RECALLED[_covered(vector)]


def nearest_of_kind(vector: Vector) -> TextClause:
    """The search for the user's memories of one kind nearest `vector`, for a
    session (bind `user_id`, `kind`, `model`, `query`, `limit`)."""
    return _OF_KIND[_covered(vector)]


def vector_literal(vector: Vector) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join([f"{x:.7g}" for x in vector]) + "]"


def passage_text(key: str, content: str) -> str:
    return f"{key}: {content}" if key and key.lower() not in content.lower() else content


class Vectors:
    """Which recall mode is on, and the embeddings behind the vector one."""

    def __init__(
        self,
        db: Database,
        embedder: Embedder | None,
        *,
        summary_rest_s: float = SUMMARY_REST_S,
    ) -> None:
        self.db = db
        self.embedder = embedder
        self.column = False
        self.summary_rest_s = summary_rest_s
        self._later: dict[str, asyncio.Task[None]] = {}  # by user: embed_later's timers

    async def open(self) -> str:
        """Find out which mode is on; say it once."""
        async with self.db.engine.connect() as conn:
            self.column = (await conn.execute(_HAS_COLUMN)).scalar() is not None
        if self.embedder is not None and not self.column:
            # Said once, at start, in the server's log (info: not a fault to
            # alarm on, and not a line for the CLI's stderr).
            log.info(
                "this database has no pgvector (the `vector` extension): "
                "memories are recalled by full text only"
            )
        else:
            log.info("memory recall: %s", self.mode)
        return self.mode

    @property
    def on(self) -> bool:
        return self.embedder is not None and self.column

    @property
    def mode(self) -> str:
        """`hybrid` (full text and vectors), or `full_text` (no embedder or no pgvector)."""
        return "hybrid" if self.on else "full_text"

    @property
    def model(self) -> str | None:
        return self.embedder.model if self.on and self.embedder is not None else None

    async def query_vector(self, question: str) -> Vector | None:
        """The question's embedding, or None (vectors off, or the embedder failed:
        recall then falls back to full text for this question)."""
        if not self.on or self.embedder is None:
            return None
        try:
            [vector] = await self.embedder.queries([question[:2000]])
        except EmbeddingFailed:
            log.warning("embedding the question failed; recalling by full text", exc_info=True)
            return None
        return vector

    async def passage_vectors(self, memories: list[tuple[str | None, str]]) -> list[Vector] | None:
        """Embeddings of memories about to be written, as (key, content), or None
        (vectors off, or the embedder failed: the save then goes by keys and words)."""
        if not self.on or self.embedder is None or not memories:
            return None
        try:
            return await self.embedder.passages(
                [passage_text(key or "", content) for key, content in memories]
            )
        except EmbeddingFailed:
            log.warning("embedding new memories failed; saving by keys and words", exc_info=True)
            return None

    async def embed_owed(
        self, user_id: str | None = None, *, batch: int = 64, rested: bool = True
    ) -> int:
        """Embed up to `batch` owed rows (of one user, or anyone's); how many were.
        A row edited meanwhile keeps its debt (the update matches on content).
        With `rested`, a summary changed in the last `summary_rest_s` waits."""
        if not self.on or self.embedder is None:
            return 0
        model = self.embedder.model
        params = {
            "model": model,
            "user_id": user_id,
            "limit": batch,
            "rest_s": self.summary_rest_s if rested else 0,
        }
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(_OWED, params)).all()
        if not rows:
            return 0
        try:
            vectors = await self.embedder.passages([passage_text(r.key, r.content) for r in rows])
        except EmbeddingFailed:
            log.warning("embedding memories failed; they stay owed", exc_info=True)
            return 0
        async with self.db.engine.begin() as conn:
            await conn.execute(
                STORE,
                [
                    {
                        "id": r.id,
                        "content": r.content,
                        "embedding": vector_literal(v),
                        "model": model,
                    }
                    for r, v in zip(rows, vectors, strict=True)
                ],
            )
        return len(rows)

    async def owed(self) -> int:
        if not self.on or self.embedder is None:
            return 0
        async with self.db.engine.connect() as conn:
            return int(
                (await conn.execute(_OWED_COUNT, {"model": self.embedder.model})).scalar() or 0
            )

    def embed_later(self, user_id: str) -> None:
        """Embed the user's summaries once they have rested (one timer per user;
        a summary changed meanwhile waits its rest again). A process that stops
        first leaves them owed, for the next start's backfill."""
        if self.on and user_id not in self._later:
            timer = asyncio.create_task(self._embed_rested(user_id), name=f"embed-{user_id}")
            self._later[user_id] = timer

    async def _embed_rested(self, user_id: str) -> None:
        assert self.embedder is not None
        params = {"user_id": user_id, "model": self.embedder.model}
        try:
            while True:
                await asyncio.sleep(self.summary_rest_s)
                while await self.embed_owed(user_id):
                    pass
                async with self.db.engine.connect() as conn:
                    if (await conn.execute(_SUMMARY_OWED, params)).first() is None:
                        return
        except Exception:
            log.warning("embedding rested summaries failed; they stay owed", exc_info=True)
        finally:
            self._later.pop(user_id, None)

    async def backfill(self, progress: Callable[[int], Any] | None = None) -> int:
        """Embed every owed row (summaries too, rested or not), in batches;
        `progress(n)` after each."""
        done = 0
        while n := await self.embed_owed(rested=False):
            done += n
            if progress is not None:
                progress(n)
        return done

    async def stop_waiting(self) -> None:
        """Cancel `embed_later`'s timers (their summaries stay owed)."""
        timers = list(self._later.values())
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)

    async def close(self) -> None:
        await self.stop_waiting()
        if self.embedder is not None:
            await self.embedder.close()
