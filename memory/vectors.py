"""Memories found by meaning: the `embedding` column (migration 0005), kept
filled by the configured embedder, and the nearest memories to a question.

A row is owed an embedding while its `embedding_model` is not the current
model's name: new rows, edited rows (a write clears the name) and, after a
change of model, every row. Writes embed their own user's owed rows right
away; `backfill` does the rest in batches (at start, and from the CLI with
progress), so a model change re-embeds in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from memory.db import Database
from memory.embeddings import Embedder, EmbeddingFailed, Vector

log = logging.getLogger(__name__)

_HAS_COLUMN = text(
    "SELECT 1 FROM pg_attribute WHERE attrelid = 'memories'::regclass "
    "AND attname = 'embedding' AND NOT attisdropped"
)
_OWED = text(
    "SELECT id, coalesce(key, '') AS key, content FROM memories "
    "WHERE embedding_model IS DISTINCT FROM :model "
    "AND (CAST(:user_id AS text) IS NULL OR user_id = :user_id) "
    "ORDER BY updated_at DESC LIMIT :limit"
)
_OWED_COUNT = text("SELECT count(*) FROM memories WHERE embedding_model IS DISTINCT FROM :model")
# A row's embedding, unless its content changed since it was embedded.
STORE = text(
    "UPDATE memories SET embedding = CAST(:embedding AS vector), embedding_model = :model "
    "WHERE id = :id AND content = :content"
)
# One user's rows of the current model, nearest first: an exact scan of that
# user's rows (the index leads with user_id), never of everyone's. The distance
# is computed once per row, in the inner query, and the similarity only for the
# rows returned: written as `SELECT 1 - (a <=> b) ... ORDER BY a <=> b`,
# PostgreSQL computes both for every row and reads each TOASTed embedding twice
# (bench/memory_load --vectors: 15.7 ms p50 before, 12.1 ms now, at 10,000 memories).
NEAREST = text(
    "SELECT id, 1 - distance AS similarity FROM ("
    "SELECT id, embedding <=> CAST(:query AS vector) AS distance FROM memories "
    "WHERE user_id = :user_id AND embedding_model = :model AND embedding IS NOT NULL "
    "AND kind IN ('entity', 'fact', 'preference') ORDER BY distance LIMIT :limit) nearest "
    "ORDER BY distance"
)
# The same scan, for one kind: the memories a new one may repeat (memory/same_fact.py).
NEAREST_OF_KIND = text(
    "SELECT id, content, 1 - distance AS similarity FROM ("
    "SELECT id, content, embedding <=> CAST(:query AS vector) AS distance FROM memories "
    "WHERE user_id = :user_id AND kind = :kind AND embedding_model = :model "
    "AND embedding IS NOT NULL ORDER BY distance LIMIT :limit) nearest ORDER BY distance"
)


def vector_literal(vector: Vector) -> str:
    """pgvector's text form of a vector."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


def passage_text(key: str, content: str) -> str:
    return f"{key}: {content}" if key and key.lower() not in content.lower() else content


class Vectors:
    """Which recall mode is on, and the embeddings behind the vector one."""

    def __init__(self, db: Database, embedder: Embedder | None) -> None:
        self.db = db
        self.embedder = embedder
        self.column = False

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

    async def embed_owed(self, user_id: str | None = None, *, batch: int = 64) -> int:
        """Embed up to `batch` owed rows (of one user, or anyone's); how many were.
        A row edited meanwhile keeps its debt (the update matches on content)."""
        if not self.on or self.embedder is None:
            return 0
        model = self.embedder.model
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(_OWED, {"model": model, "user_id": user_id, "limit": batch})
            ).all()
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

    async def backfill(self, progress: Callable[[int], Any] | None = None) -> int:
        """Embed every owed row, in batches; `progress(n)` after each."""
        done = 0
        while n := await self.embed_owed():
            done += n
            if progress is not None:
                progress(n)
        return done

    async def close(self) -> None:
        if self.embedder is not None:
            await self.embedder.close()
