"""Long-term memories of a logged-in user: conversation summaries, preferences,
entities and facts, each recording the session it came from."""

from __future__ import annotations

import asyncio
import builtins
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from memory import recall
from memory.db import Database, fetch, for_psycopg
from memory.embeddings import Vector
from memory.errors import InvalidInput, ThreadlineError
from memory.journal import check_text, like_pattern
from memory.models import ChatMessage, ChatSession, Memory, is_made_id
from memory.same_fact import content_words, said_within, same_memory
from memory.vectors import STORE, Vectors, nearest, vector_literal

KINDS = ("summary", "preference", "entity", "fact")
CONTENT_MAX = 4000
_WORD = re.compile(r"\w+", re.UNICODE)


# A session's save marked done (its `memory_saved_seq`) and its summary, if
# given, written or rewritten, in one statement; only while the session is
# still this user's, with memory on, and not saved this far. The UPDATE takes
# the session row's lock: a concurrent delete (with forget) or claim finishes
# first and leaves nothing to mark, or waits and then removes what this wrote.
_MARK_SAVED = text(
    """
WITH saved AS (
    UPDATE chat_sessions SET memory_saved_seq = :upto
     WHERE id = :session_id AND user_id = :user_id AND memory_enabled
       AND memory_saved_seq < :upto
    RETURNING id
), summary AS (
    INSERT INTO memories (id, user_id, kind, key, content, source_session_id)
    SELECT gen_random_uuid()::text, :user_id, 'summary', NULL, :summary, saved.id
      FROM saved
     WHERE CAST(:summary AS text) IS NOT NULL
    ON CONFLICT (user_id, source_session_id) WHERE kind = 'summary'
    DO UPDATE SET content = EXCLUDED.content, updated_at = now(), embedding_model = NULL
)
SELECT count(*) > 0 AS saved FROM saved
"""
)
# A turn of a logged-in user saves once its answer is out: on the psycopg pool.
_MARK_SAVED_SQL, _ = for_psycopg(_MARK_SAVED)


class MemoryNotFound(ThreadlineError):
    """No such memory, or not the caller's: both answer the same."""

    code = "not_found"


@dataclass(frozen=True)
class MemoryDraft:
    """A memory to save: `key` names a preference or entity (latest wins)."""

    kind: str
    key: str | None
    content: str


def check_draft(draft: MemoryDraft) -> MemoryDraft:
    if draft.kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    content = draft.content.strip()
    if not content or len(content) > CONTENT_MAX:
        raise InvalidInput(f"content must be 1 to {CONTENT_MAX} characters")
    check_text(content)
    key = draft.key.strip()[:200] if draft.key and draft.key.strip() else None
    if key is not None:
        check_text(key, what="key")
    return MemoryDraft(draft.kind, key, content)


class MemoryStore:
    """One user's memories. With `vectors` on, each write embeds what it wrote
    (memory/vectors.py) and recall is hybrid."""

    def __init__(self, db: Database, vectors: Vectors | None = None) -> None:
        self.db = db
        self.vectors = vectors

    async def _embed(self, user_id: str) -> None:
        """Embed the user's owed rows now; what fails stays owed for the backfill."""
        if self.vectors is not None and self.vectors.on:
            await self.vectors.embed_owed(user_id)

    async def list(
        self, user_id: str, *, kind: str | None = None, q: str | None = None, limit: int = 200
    ) -> list[Memory]:
        query = select(Memory).where(Memory.user_id == user_id)
        if kind is not None:
            if kind not in KINDS:
                raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
            query = query.where(Memory.kind == kind)
        if q:
            check_text(q, what="q")
            pattern = like_pattern(q)
            query = query.where(or_(Memory.content.ilike(pattern), Memory.key.ilike(pattern)))
        async with self.db.sessions() as s:
            rows = await s.scalars(query.order_by(Memory.updated_at.desc()).limit(limit))
            return list(rows.all())

    async def get(self, user_id: str, memory_id: str) -> Memory:
        if not is_made_id(memory_id):
            raise MemoryNotFound("memory not found")
        async with self.db.sessions() as s:
            memory = await s.get(Memory, memory_id)
        if memory is None or memory.user_id != user_id:
            raise MemoryNotFound("memory not found")
        return memory

    async def find(self, user_id: str, kind: str, key: str) -> Memory | None:
        """The user's memory of `kind` under `key` (its subject key, or else its
        id): how the Agent Server API's store names a memory."""
        by_key = Memory.key == key
        if is_made_id(key):
            by_key = or_(by_key, Memory.id == key)
        query = select(Memory).where(Memory.user_id == user_id, Memory.kind == kind, by_key)
        async with self.db.sessions() as s:
            found = (await s.scalars(query.order_by(Memory.key.is_(None)).limit(1))).first()
        return found

    async def add(
        self,
        user_id: str,
        draft: MemoryDraft,
        *,
        source_session_id: str | None = None,
        memory_id: str | None = None,
    ) -> Memory:
        """Save a memory; a keyed one replaces the user's earlier memory of that key.

        With `memory_id` (an idempotency key: the agent's `remember` makes it
        from the query id), a memory already saved under it is returned as it is.
        """
        draft = check_draft(draft)
        async with self.db.sessions.begin() as s:
            if memory_id is not None:
                done = await s.scalar(
                    select(Memory.id).where(Memory.id == memory_id, Memory.user_id == user_id)
                )
                if done is not None:
                    return await self.get(user_id, done)
            saved_id = await s.scalar(_upsert(user_id, draft, source_session_id, memory_id))
        assert saved_id is not None
        await self._embed(user_id)
        return await self.get(user_id, saved_id)

    async def update(
        self, user_id: str, memory_id: str, *, content: str | None, key: str | None
    ) -> Memory:
        current = await self.get(user_id, memory_id)
        draft = check_draft(
            MemoryDraft(current.kind, key or current.key, content or current.content)
        )
        async with self.db.sessions.begin() as s:
            await s.execute(
                update(Memory)
                .where(Memory.id == current.id)
                .values(
                    content=draft.content,
                    key=draft.key,
                    updated_at=func.now(),
                    embedding_model=None,
                )
            )
            if current.kind != "summary" and draft.content != current.content:
                # The summaries that say it word for word say the correction (as delete).
                await _scrub_summaries(
                    s, user_id, _as_said(current.content), now_said=_as_said(draft.content)
                )
        await self._embed(user_id)
        return await self.get(user_id, memory_id)

    async def delete(self, user_id: str, memory_id: str) -> Memory:
        """Delete one of the user's memories; returns it as it was.

        A fact, preference or entity also leaves the user's conversation
        summaries: the lines of theirs that say it go, word for word (the
        offline summary keeps each statement on a line of its own,
        graph/summary.py) or in other words naming all it names (a model's
        summary). Else the memory panel, and the prompt of every later thread,
        would still hold what the user asked to forget.
        """
        memory = await self.get(user_id, memory_id)
        said = _as_said(memory.content)
        async with self.db.sessions.begin() as s:
            await s.execute(delete(Memory).where(Memory.id == memory.id))
            scrubbed = memory.kind != "summary" and await _scrub_summaries(s, user_id, said)
        if scrubbed:
            await self._embed(user_id)
        return memory

    async def unlearn(self, user_id: str, session_id: str, sentences: builtins.list[str]) -> int:
        """Take back what a session's retracted question taught (an edited or
        rolled-back question whose save ran): the memories learned there that
        say one of its `sentences`, as the user said it or in other words naming
        nothing more (a model's: "The user has a dog named Rex" for "My dog is
        called Rex"), and the lines of the session's summary that say it;
        unless a question of the session's journal still says it. Returns the
        memories deleted."""
        gone, scrubbed = [], False
        async with self.db.sessions.begin() as s:
            learned = (
                await s.scalars(
                    select(Memory).where(
                        Memory.user_id == user_id,
                        Memory.source_session_id == session_id,
                        Memory.kind != "summary",
                    )
                )
            ).all()
            for sentence in dict.fromkeys(" ".join(t.split()) for t in sentences):
                if len(sentence) < 3 or await _still_said(s, session_id, sentence):
                    continue
                for memory in learned:
                    if memory in gone:
                        continue
                    if memory.content == f"User said: {sentence}" or (
                        said_within(memory.content, sentence)
                        and not await _still_said(s, session_id, memory.content, reworded=True)
                    ):
                        gone.append(memory)
                scrubbed |= await _scrub_summaries(s, user_id, sentence, session_id)
            if gone:
                await s.execute(delete(Memory).where(Memory.id.in_([m.id for m in gone])))
        if scrubbed:
            await self._embed(user_id)
        return len(gone)

    async def load_relevant(
        self, user_id: str, query: str, *, summaries: int = 4, budget_tokens: int = 1500
    ) -> builtins.list[dict[str, Any]]:
        """What planning hands the model (see memory/recall.py): hybrid when
        vectors are on, by full text otherwise.

        The question is embedded (on the embedder's thread, or over HTTP) while
        the full-text statement runs: recall awaits the vector only for its
        nearest search.
        """
        embedding = None
        if self.vectors is not None and self.vectors.on:
            embedding = asyncio.ensure_future(self.vectors.query_vector(query))
        try:
            return await recall.load_relevant(
                self.db,
                user_id,
                query,
                summaries=summaries,
                budget_tokens=budget_tokens,
                query_vector=embedding,
                model=self.vectors.model if self.vectors is not None else None,
            )
        finally:
            if embedding is not None and not embedding.done():
                embedding.cancel()  # the load failed before it needed the vector

    async def search(
        self, user_id: str, query: str, kinds: builtins.list[str], *, limit: int
    ) -> builtins.list[Memory]:
        """The user's memories of `kinds` that `query` finds, best first: its
        words (full text, over every kind) fused with the memories nearest it
        by meaning (facts, entities and preferences; when vectors are on), as
        planning's recall fuses them (reciprocal rank fusion)."""
        lists: builtins.list[builtins.list[str]] = []
        terms = recall.search_terms(query)
        if terms:
            worded = (
                select(Memory.id)
                .where(
                    Memory.user_id == user_id,
                    Memory.kind.in_(kinds),
                    recall.SEARCH.op("@@")(func.to_tsquery("simple", terms)),
                )
                .order_by(func.ts_rank(recall.SEARCH, func.to_tsquery("simple", terms)).desc())
                .limit(limit)
            )
            async with self.db.sessions() as s:
                lists.append(list((await s.scalars(worded)).all()))
        model = self.vectors.model if self.vectors is not None and self.vectors.on else None
        if model is not None and self.vectors is not None:
            vector = await self.vectors.query_vector(query)
            if vector is not None:
                near = await nearest(self.db, user_id, model, vector, limit)
                lists.append([row.id for row in near if row.kind in kinds])
        best = recall.fused_ids(lists, limit)
        async with self.db.sessions() as s:
            rows = {m.id: m for m in await s.scalars(select(Memory).where(Memory.id.in_(best)))}
        return [rows[memory_id] for memory_id in best if memory_id in rows]

    async def kinds_held(self, user_id: str) -> set[str]:
        """The kinds of memory the user has at least one of."""
        held = select(Memory.kind).where(Memory.user_id == user_id).distinct()
        async with self.db.sessions() as s:
            return set((await s.scalars(held)).all())

    async def save_from_session(
        self,
        session_id: str,
        user_id: str,
        drafts: builtins.list[MemoryDraft],
        summary: str | None,
        upto_seq: int,
        updates: dict[str, str] | None = None,
    ) -> bool:
        """Write what a session taught us, once, and only if it is still this user's.

        `drafts` are new memories, one memory per fact (see `_write_draft`);
        `updates` change known memories by id (a changed fact, now learned
        here); `summary` None leaves the session without one.

        The session row is locked first: a concurrent delete (with forget) or
        claim either finishes before us, and we see it and write nothing, or
        waits for us and then removes what we wrote.
        """
        checked = [check_draft(draft) for draft in drafts]
        marked = {
            "session_id": session_id,
            "user_id": user_id,
            "upto": upto_seq,
            "summary": summary[:CONTENT_MAX] if summary else None,
        }
        if not checked and not updates:
            # A summary alone (most turns): one statement, which locks the row too.
            [row] = await fetch(self.db, _MARK_SAVED_SQL, marked)
            if not row["saved"]:
                return False
        elif not await self._save_learned(marked, checked, updates or {}):
            return False
        await self._embed(user_id)
        if summary and self.vectors is not None:
            self.vectors.embed_later(user_id)  # the summary, once it rests
        return True

    async def _save_learned(
        self,
        marked: dict[str, Any],
        drafts: builtins.list[MemoryDraft],
        updates: dict[str, str],
    ) -> bool:
        """`save_from_session` with memories to write: in a transaction that locks
        the session row first, then writes them and marks the save (`_MARK_SAVED`,
        whose parameters `marked` are)."""
        session_id, user_id = marked["session_id"], marked["user_id"]
        # Embedded before the transaction: no session is held while the model runs.
        vectors = await self._vectors_of(drafts)
        async with self.db.sessions.begin() as s:
            row = (
                await s.execute(
                    select(
                        ChatSession.user_id,
                        ChatSession.memory_enabled,
                        ChatSession.memory_saved_seq,
                    )
                    .where(ChatSession.id == session_id)
                    .with_for_update()
                )
            ).one_or_none()
            if row is None or row.user_id != user_id or not row.memory_enabled:
                return False
            if row.memory_saved_seq >= marked["upto"]:
                return False  # already saved: a rerun after a crash writes nothing twice
            for draft, vector in zip(drafts, vectors, strict=True):
                await self._write_draft(s, user_id, session_id, draft, vector)
            for memory_id, content in updates.items():
                changed = check_draft(MemoryDraft("fact", None, content)).content
                await s.execute(
                    update(Memory)
                    .where(Memory.id == memory_id, Memory.user_id == user_id)
                    .values(
                        content=changed,
                        source_session_id=session_id,
                        updated_at=func.now(),
                        embedding_model=None,
                    )
                )
            await s.execute(_MARK_SAVED, marked)
        return True

    async def _vectors_of(self, drafts: builtins.list[MemoryDraft]) -> builtins.list[Vector | None]:
        """Each draft's embedding; all None when vectors are off or the embedder failed."""
        found = None
        if self.vectors is not None:
            found = await self.vectors.passage_vectors([(d.key, d.content) for d in drafts])
        return builtins.list(found) if found is not None else [None] * len(drafts)

    async def _write_draft(
        self,
        s: AsyncSession,
        user_id: str,
        session_id: str,
        draft: MemoryDraft,
        vector: Vector | None,
    ) -> None:
        """One memory per fact. A keyed draft supersedes the user's memory of
        that key (a new city). Otherwise a memory of the kind that says the same,
        word for word or (with vectors) in other words, is refreshed: learned
        again here, its content, key and embedding kept. Else a new memory."""
        model = self.vectors.model if self.vectors is not None else None
        if draft.key is None or await s.scalar(_keyed(user_id, draft)) is None:
            same = await s.scalar(_said_before(user_id, draft))
            if same is None and vector is not None and model is not None:
                same = await same_memory(s, user_id, draft.kind, draft.content, vector, model)
            if same is not None:
                await s.execute(
                    update(Memory)
                    .where(Memory.id == same, Memory.user_id == user_id)
                    .values(source_session_id=session_id, updated_at=func.now())
                )
                return
        saved_id = await s.scalar(_upsert(user_id, draft, session_id))
        if vector is not None and model is not None:
            # Stored now, so the next draft of this save can find it.
            stored = {"id": saved_id, "content": draft.content, "model": model}
            await s.execute(STORE, {**stored, "embedding": vector_literal(vector)})

    async def pending_sessions(
        self, limit: int = 100, *, idle_s: float = 0
    ) -> builtins.list[tuple[str, str]]:
        """Sessions whose memory save is owed (e.g. the process died after `done`);
        with `idle_s`, of those, the ones unchanged for that long."""
        query = (
            select(ChatSession.id, ChatSession.user_id)
            .where(
                ChatSession.user_id.is_not(None),
                ChatSession.memory_enabled.is_(True),
                ChatSession.memory_saved_seq < ChatSession.last_seq,
            )
            .limit(limit)
        )
        if idle_s > 0:
            query = query.where(ChatSession.updated_at < func.now() - timedelta(seconds=idle_s))
        async with self.db.sessions() as s:
            return [(r.id, r.user_id) for r in (await s.execute(query)).all()]


# The first line of a summary, naming its thread (graph/remember.py).
_TITLE_LINE = re.compile(r"\s*Conversation(?: “.*”)?:\s*")


def _as_said(content: str) -> str:
    """A memory's words as the user said them ("User said: " and spaces aside)."""
    return " ".join(content.removeprefix("User said: ").split()).strip(" .")


async def _scrub_summaries(
    s: AsyncSession,
    user_id: str,
    said: str,
    session_id: str | None = None,
    *,
    now_said: str | None = None,
) -> bool:
    """Drop the lines of the user's summaries (of `session_id` alone, when
    given) that say `said`: word for word (spaces and case aside), or in other
    words (memory/same_fact.py: said_within; a model's summary: "Mentioned
    playing tennis on Sundays" says "The user plays tennis on Sundays");
    whether any changed. With `now_said`, a line that says it word
    for word says that there instead, and a line in other words stays."""
    if len(said) < 3:
        return False
    reworded = len(content_words(said)) >= 2 and now_said is None
    # The summaries read: those holding its longest word.
    mark = _held_by_every_wording(said) if reworded else max(said.split(), key=len)
    query = select(Memory).where(
        Memory.user_id == user_id,
        Memory.kind == "summary",
        Memory.content.ilike(like_pattern(mark or said)),
    )
    if session_id is not None:
        query = query.where(Memory.source_session_id == session_id)
    found = await s.scalars(query.with_for_update())
    saying = re.compile(rf"(?<!\w){re.escape(said)}(?!\w)", re.IGNORECASE)
    changed = False
    for summary in found.all():
        lines, kept = summary.content.splitlines(), []
        for line in lines:
            flat = " ".join(line.split())
            if saying.search(flat):
                if now_said:
                    kept.append(saying.sub(lambda _: now_said, flat))
            elif not (reworded and said_within(said, flat)):
                kept.append(line)
        if kept == lines:
            continue
        changed = True
        if not [line for line in kept if line.strip() and not _TITLE_LINE.fullmatch(line)]:
            await s.delete(summary)  # nothing left but its title
            continue
        summary.content = "\n".join(kept)
        summary.updated_at = func.now()
        summary.embedding_model = None
    return changed


def _held_by_every_wording(said: str) -> str | None:
    """The longest of `said`'s content words (stems, which every wording of it
    holds): what a text saying it in other words must contain, for a LIKE to
    find the candidates. Not "not", which stands for "n't"."""
    named = [word for word in content_words(said) if word != "not"]
    return max(named, key=len) if named else None


async def _still_said(
    s: AsyncSession, session_id: str, sentence: str, *, reworded: bool = False
) -> bool:
    """Whether a question of the session's journal still says `sentence`: word
    for word, or (`reworded`) naming all it names (memory/same_fact.py)."""
    if not reworded:
        found = await s.scalar(
            select(ChatMessage.id)
            .where(
                ChatMessage.session_id == session_id,
                ChatMessage.role == "user",
                ChatMessage.content.ilike(like_pattern(sentence)),
            )
            .limit(1)
        )
        return found is not None
    mark = _held_by_every_wording(sentence)
    if mark is None:
        return False
    questions = await s.scalars(
        select(ChatMessage.content).where(
            ChatMessage.session_id == session_id,
            ChatMessage.role == "user",
            ChatMessage.content.ilike(like_pattern(mark)),
        )
    )
    return any(said_within(sentence, question) for question in questions.all())


def _upsert(
    user_id: str, draft: MemoryDraft, source_session_id: str | None, memory_id: str | None = None
) -> Any:
    values = {
        "id": memory_id or func.gen_random_uuid().cast(Memory.id.type),
        "user_id": user_id,
        "kind": draft.kind,
        "key": draft.key,
        "content": draft.content,
        "source_session_id": source_session_id,
    }
    statement = insert(Memory).values(values)
    if draft.key is not None:
        statement = statement.on_conflict_do_update(
            index_elements=["user_id", "kind", "key"],
            index_where=text("key IS NOT NULL"),
            set_={
                "content": draft.content,
                "source_session_id": source_session_id,
                "updated_at": func.now(),
                "embedding_model": None,
            },
        )
    return statement.returning(Memory.id)


def _keyed(user_id: str, draft: MemoryDraft) -> Any:
    """The user's memory of the draft's kind and key, which the draft supersedes."""
    return select(Memory.id).where(
        Memory.user_id == user_id, Memory.kind == draft.kind, Memory.key == draft.key
    )


def _said_before(user_id: str, draft: MemoryDraft) -> Any:
    """Whether the user has a memory of this kind saying the same, whatever the case and spacing."""
    same = func.lower(func.regexp_replace(Memory.content, r"\s+", " ", "g"))
    return (
        select(Memory.id)
        .where(
            Memory.user_id == user_id,
            Memory.kind == draft.kind,
            same == " ".join(draft.content.lower().split()),
        )
        .limit(1)
    )
