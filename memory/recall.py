"""What planning hands the model about a user: the recency lists (facts,
preferences, conversation summaries, entities) and the memories most relevant
to the question, within a token budget.

Relevance is hybrid when vectors are on (memory/vectors.py): the full-text
matches and the nearest memories by meaning are fused by reciprocal rank, so a
paraphrase ("Which city am I based in?") finds what its words do not.

Built for one user among millions of memories (bench/memory_load): the recency
lists and the full-text matches come in one statement, ranked on the stored
`search` vector through per-user GIN indexes (migration 0003); trigram
similarity orders ties and is the fallback for what full text does not split
(CJK); rows stay plain rows, not ORM entities.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Sequence
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import (
    ARRAY,
    REAL,
    Text,
    all_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSVECTOR, array

from memory.db import Database, for_psycopg
from memory.embeddings import Vector
from memory.models import Memory
from memory.vectors import nearest

RELEVANT_KINDS = ("entity", "fact")
MATCHES = 10
SEARCH = literal_column("memories.search", TSVECTOR)
_WORD = re.compile(r"\w+", re.UNICODE)
# Words that match most memories and rank none: searching for them costs time
# (ranking thousands of matches) and finds nothing a question is about.
_FUNCTION_WORDS = """about all and any are can could did does for from had has have her his how
its just know me not now of our out she tell that the their them then there these they
this told was were what when where which who why will with would you your"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
FIELDS = (
    Memory.id,
    Memory.kind,
    Memory.key,
    Memory.content,
    Memory.source_session_id,
    Memory.created_at,
    Memory.updated_at,
)
RRF_K = 60  # reciprocal rank fusion: score = sum of 1 / (RRF_K + rank) over the lists
# Where each list goes in the answer; part 1 is the relevant matches.
RECENT_PARTS = {0: "fact", 2: "preference", 3: "summary", 4: "entity"}
# How many of each kind the recency lists hold (summaries: a setting).
RECENT_LIMITS = {"fact": 5, "preference": 10, "entity": 5}


def search_terms(query: str) -> str | None:
    """An OR tsquery of the query's meaningful words, or None.

    Words are \\w+ runs, so nothing the user types can break the tsquery syntax.
    Very short Latin words ("is", "my") and English function words match
    everything and are dropped; two-letter words in other scripts (서울, 東京)
    are kept.
    """
    words = {
        w.lower()
        for w in _WORD.findall(query)
        if (len(w) >= 3 or (len(w) >= 2 and not w.isascii())) and w.lower() not in FUNCTION_WORDS
    }
    return " | ".join(sorted(words)) if words else None


def matching(user_id: Any, terms: Any, query: Any) -> Any:
    """Full-text matches by rank, then similarity, then recency. Similarity is
    computed only for matches that tie with the tenth-best rank or beat it: the
    only ones it can reorder."""
    tsquery = func.to_tsquery("simple", terms)
    ranked = (
        select(*FIELDS, func.ts_rank(SEARCH, tsquery).label("rank"))
        .where(
            Memory.user_id == user_id,
            Memory.kind == any_(array(RELEVANT_KINDS)),
            SEARCH.op("@@")(tsquery),
        )
        .cte("ranked")
    )
    best = select(ranked.c.rank).order_by(ranked.c.rank.desc()).limit(MATCHES).subquery()
    cut = select(func.min(best.c.rank)).scalar_subquery()
    similarity = func.similarity(ranked.c.content, query)
    return (
        select(
            *[ranked.c[column.key] for column in FIELDS],
            literal(1).label("part"),
            ranked.c.rank,
            similarity.label("similarity"),
        )
        .where(ranked.c.rank >= cut)
        .order_by(ranked.c.rank.desc(), similarity.desc(), ranked.c.updated_at.desc())
        .limit(MATCHES)
    )


def similar(user_id: Any, query: Any, exclude: Any, limit: Any) -> Any:
    """The trigram fallback: what full text did not find, by similarity, then recency."""
    return (
        select(*FIELDS)
        .where(
            Memory.user_id == user_id,
            Memory.kind == any_(array(RELEVANT_KINDS)),
            Memory.content.op("%")(query),
            Memory.id != all_(exclude),
        )
        .order_by(func.similarity(Memory.content, query).desc(), Memory.updated_at.desc())
        .limit(limit)
    )


def recent_parts(user_id: Any, summaries: Any) -> list[Any]:
    limits = {**RECENT_LIMITS, "summary": summaries}
    return [
        select(
            *FIELDS,
            literal(n).label("part"),
            cast(literal(0), REAL).label("rank"),
            cast(literal(0), REAL).label("similarity"),
        )
        .where(Memory.user_id == user_id, Memory.kind == kind)
        .order_by(Memory.updated_at.desc())
        .limit(limits[kind])
        for n, kind in RECENT_PARTS.items()
    ]


def one_statement(parts: list[Any]) -> Any:
    every = union_all(*parts).subquery()
    return select(every).order_by(
        every.c.part, every.c.rank.desc(), every.c.similarity.desc(), every.c.updated_at.desc()
    )


# Built once, with bind parameters: building them per load costs as much as running them.
_USER: Any = bindparam("user_id")
_QUERY: Any = bindparam("query")
_SUMMARIES: Any = bindparam("summaries")
RECENT = one_statement(recent_parts(_USER, _SUMMARIES))
RECENT_AND_MATCHING = one_statement(
    [*recent_parts(_USER, _SUMMARIES), matching(_USER, bindparam("terms"), _QUERY)]
)
SIMILAR = similar(_USER, _QUERY, bindparam("exclude", type_=ARRAY(Text)), bindparam("limit"))
# As run: compiled once for psycopg (memory/db.py: for_psycopg).
_RECENT_SQL = for_psycopg(RECENT)
_RECENT_AND_MATCHING_SQL = for_psycopg(RECENT_AND_MATCHING)
_SIMILAR_SQL = for_psycopg(SIMILAR)


def _as_dict(row: Any, relevant: bool) -> dict[str, Any]:
    return {
        "relevant": relevant,  # one of the question's matches, not only recent
        "id": row.id,
        "kind": row.kind,
        "key": row.key,
        "content": row.content,
        "source_session_id": row.source_session_id,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _within_budget(rows: list[Any], budget_tokens: int, relevant: set[str]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    chosen: list[dict[str, Any]] = []
    used = 0
    for row in rows:
        cost = len(row.content) // 4 + 8
        if row.id in seen or used + cost > budget_tokens:
            continue
        seen.add(row.id)
        used += cost
        chosen.append(_as_dict(row, row.id in relevant))
    return chosen


def fused(lexical: Sequence[Any], nearest: Sequence[Any], rows_by_id: dict[str, Any]) -> list[Any]:
    """The two rankings fused by reciprocal rank, best first, at most MATCHES."""
    rankings = [[row.id for row in lexical], [row.id for row in nearest]]
    best = fused_ids(rankings, MATCHES)
    return [rows_by_id[memory_id] for memory_id in best if memory_id in rows_by_id]


def fused_ids(rankings: Sequence[Sequence[str]], limit: int) -> list[str]:
    """Memory ids ranked by several lists, fused by reciprocal rank: best first,
    at most `limit`."""
    score: dict[str, float] = {}
    for ranking in rankings:
        for rank, memory_id in enumerate(ranking, start=1):
            score[memory_id] = score.get(memory_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(score, key=lambda memory_id: -score[memory_id])[:limit]


async def load_relevant(
    db: Database,
    user_id: str,
    query: str,
    *,
    summaries: int = 4,
    budget_tokens: int = 1500,
    query_vector: Vector | Awaitable[Vector | None] | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Recent facts, the relevant matches, preferences, summaries, entities, deduplicated.

    With `query_vector` (and the `model` that made it), the relevant matches are
    the full-text ones fused with the user's nearest memories by meaning. The
    nearest search runs beside the full-text statement, on a connection of its
    own, as soon as the vector is there: it may be still on its way (an
    awaitable), and no connection is held while it is awaited (a remote
    embedder may be slow). An awaitable that gives None (the embedder failed)
    leaves full text.

    The full-text statements run unprepared (`run_unprepared`): each is planned
    for its own user (a generic plan reused across users plans for an average
    user and is several times slower for a large one). The nearest search has
    one plan for every user, and runs prepared on the pool (vectors.nearest).
    """
    terms = search_terms(query)
    params: dict[str, Any] = {"user_id": user_id, "summaries": summaries, "query": query}
    if query_vector is None or model is None:
        rows = await _recent_and_matching(db, params, terms)
        return _picked(rows, await _with_similar(db, params, rows), budget_tokens)
    searching = asyncio.ensure_future(_nearest(db, user_id, model, query_vector))
    try:
        rows = await _recent_and_matching(db, params, terms)
        nearest = await searching
    finally:
        searching.cancel()  # when the full-text statement failed; else a no-op
    if nearest is None:
        matched = await _with_similar(db, params, rows)
    else:
        matched = fused(_matches(rows), nearest, {row.id: row for row in [*nearest, *rows]})
    return _picked(rows, matched, budget_tokens)


async def run_unprepared(
    db: Database, compiled: tuple[str, dict[str, Any]], params: Any
) -> list[Any]:
    """One of the statements above on the pool, never prepared (planned for
    these parameters), its rows as named tuples."""
    sql, literals = compiled
    async with db.pool.connection() as conn:
        cursor = conn.cursor(row_factory=namedtuple_row)
        await cursor.execute(sql, {**literals, **params}, prepare=False)
        return await cursor.fetchall()


async def _recent_and_matching(
    db: Database, params: dict[str, Any], terms: str | None
) -> list[Any]:
    """The recency lists, and the full-text matches (part 1) when the query has terms."""
    statement = _RECENT_AND_MATCHING_SQL if terms else _RECENT_SQL
    return await run_unprepared(db, statement, {**params, "terms": terms})


def _matches(rows: Sequence[Any]) -> list[Any]:
    return [row for row in rows if row.part == 1]


def _all_found(rows: Sequence[Any], matched: set[str]) -> bool:
    """Whether the user has no memory of RELEVANT_KINDS but those `matched`:
    known when each of those kinds' recency lists came back shorter than its
    limit, so holds all of that kind (a new user, or one who has said little
    about themselves; the top-up would look for nothing)."""
    for part, kind in RECENT_PARTS.items():
        if kind not in RELEVANT_KINDS:
            continue
        listed = [row.id for row in rows if row.part == part]
        if len(listed) >= RECENT_LIMITS[kind] or not matched.issuperset(listed):
            return False
    return True


def _picked(rows: Sequence[Any], matched: list[Any], budget_tokens: int) -> list[dict[str, Any]]:
    # The matches first: when the budget is tight, they are what the question needs.
    picked = matched + [row for row in rows if row.part == 0]
    picked += [row for row in rows if row.part > 1]
    return _within_budget(picked, budget_tokens, {row.id for row in matched})


async def _with_similar(db: Database, params: dict[str, Any], rows: Sequence[Any]) -> list[Any]:
    """The full-text matches among `rows`, topped up by trigram similarity
    (SIMILAR) to MATCHES: unless none is left to find."""
    matched = _matches(rows)
    exclude = [row.id for row in matched]
    if len(matched) >= MATCHES or _all_found(rows, set(exclude)):
        return matched
    fallback = {**params, "exclude": exclude, "limit": MATCHES - len(matched)}
    return matched + await run_unprepared(db, _SIMILAR_SQL, fallback)


async def _nearest(
    db: Database, user_id: str, model: str, query_vector: Vector | Awaitable[Vector | None]
) -> list[Any] | None:
    """The user's memories nearest the question (vectors.nearest), or None when
    its embedding failed; a connection is taken once the vector is there."""
    vector = query_vector if isinstance(query_vector, list) else await query_vector
    if vector is None:
        return None
    return await nearest(db, user_id, model, vector, MATCHES)
