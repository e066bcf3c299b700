"""One memory per fact: a save that repeats a fact in other words refreshes the
memory the user has, on the embedded PostgreSQL 18 with the local embedder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from memory.db import Database
from memory.embeddings import LocalEmbedder
from memory.memories import MemoryDraft, MemoryStore
from memory.models import Memory
from memory.same_fact import says_the_same
from memory.sessions import Owner, SessionStore
from memory.vectors import Vectors
from tests.support.users import create_user


@pytest.fixture
async def store(vector_db: Database, local_embedder: LocalEmbedder) -> MemoryStore:
    vectors = Vectors(vector_db, local_embedder)
    assert await vectors.open() == "hybrid"
    return MemoryStore(vector_db, vectors)


async def save(db: Database, store: MemoryStore, user: str, drafts: list[MemoryDraft]) -> str:
    """Save `drafts` as what a new session of `user` taught; the session's id."""
    session = await SessionStore(db, anon_ttl=timedelta(hours=1)).create(Owner(user_id=user))
    assert await store.save_from_session(session.id, user, drafts, None, upto_seq=1)
    return session.id


def facts(*contents: str) -> list[MemoryDraft]:
    return [MemoryDraft("fact", None, content) for content in contents]


# Near misses the local model scores as alike as paraphrases (0.93-0.99).
CHANGED = [
    ("User said: I live in Oslo", "User said: I live in Bergen"),
    ("User said: my name is Theodora", "User said: my sister's name is Theodora"),
    ("User said: I live in Tromsø", "User said: I work in Tromsø"),
    ("User said: my doctor is Dr. Hansen", "User said: my dentist is Dr. Hansen"),
    ("User said: I like tea", "User said: I don't like tea"),
    ("User said: I moved to Oslo", "User said: I moved from Oslo"),
    ("User said: my son is Lucas", "User said: my son is Luca"),
    ("User said: I have two kids", "User said: I have three kids"),
]
SAME = [
    ("User said: my name is Theodora", "The user's name is Theodora"),
    ("User said: I am allergic to peanuts", "The user has a peanut allergy"),
    ("User said: my daughter is called Ingrid", "The user has a daughter named Ingrid"),
    ("User said: my birthday is on the 3rd of March", "The user's birthday is March 3"),
    ("User said: I don't eat meat", "The user does not eat meat"),
]


@pytest.mark.parametrize(("one", "other"), CHANGED + SAME)
def test_the_word_test_tells_a_changed_fact_from_a_paraphrase(one: str, other: str) -> None:
    assert says_the_same(one, other) == ((one, other) in SAME)


async def test_the_same_fact_in_other_words_is_stored_once(
    vector_db: Database, store: MemoryStore
) -> None:
    user = await create_user(vector_db, "theodora@example.com")
    await save(
        vector_db,
        store,
        user,
        facts("User said: my name is Theodora", "User said: I have a dog named Rex"),
    )
    later = await save(
        vector_db,
        store,
        user,
        facts(
            "The user's name is Theodora",
            "User said: my sister lives in Oslo",
            "User said: my brother lives in Oslo",  # 0.98 like the sister: still another fact
        ),
    )
    saved = {m.content: m for m in await store.list(user)}
    assert sorted(saved) == [
        "User said: I have a dog named Rex",
        "User said: my brother lives in Oslo",
        "User said: my name is Theodora",
        "User said: my sister lives in Oslo",
    ]
    # refreshed: learned again in the later session
    assert saved["User said: my name is Theodora"].source_session_id == later


async def test_a_repeat_within_one_save_and_under_another_key_is_stored_once(
    vector_db: Database, store: MemoryStore
) -> None:
    user = await create_user(vector_db, "keys@example.com")
    await save(
        vector_db,
        store,
        user,
        [
            MemoryDraft("fact", "home city", "The user lives in Tromsø"),
            MemoryDraft("fact", "location", "User said: I live in Tromsø"),
            MemoryDraft("fact", None, "User said: I work in Tromsø"),
            MemoryDraft("preference", "home", "The user lives in Tromsø"),  # another kind
        ],
    )
    saved = sorted((m.kind, m.key or "", m.content) for m in await store.list(user))
    assert saved == [
        ("fact", "", "User said: I work in Tromsø"),
        ("fact", "home city", "The user lives in Tromsø"),
        ("preference", "home", "The user lives in Tromsø"),
    ]


async def test_another_users_memory_neither_blocks_nor_is_touched(
    vector_db: Database, store: MemoryStore
) -> None:
    other = await create_user(vector_db, "other@example.com")
    await save(vector_db, store, other, facts("The user's name is Theodora"))
    [theirs] = await store.list(other)
    me = await create_user(vector_db, "me@example.com")
    await save(vector_db, store, me, facts("User said: my name is Theodora"))
    await save(vector_db, store, me, facts("The user's name is Theodora"))
    assert [m.content for m in await store.list(me)] == ["User said: my name is Theodora"]
    async with vector_db.sessions() as s:
        after = await s.get(Memory, theirs.id)
    assert after is not None
    assert (after.content, after.source_session_id, after.updated_at) == (
        theirs.content,
        theirs.source_session_id,
        theirs.updated_at,
    )


async def test_without_vectors_the_same_words_refresh_and_other_words_are_kept(
    vector_db: Database,
) -> None:
    store = MemoryStore(vector_db)  # no embedder: keys and words only
    user = await create_user(vector_db, "words@example.com")
    await save(vector_db, store, user, facts("User said: my name is Theodora"))
    later = await save(
        vector_db,
        store,
        user,
        facts("user said:  my name is  THEODORA", "The user's name is Theodora"),
    )
    saved = {m.content: m for m in await store.list(user)}
    assert sorted(saved) == ["The user's name is Theodora", "User said: my name is Theodora"]
    assert saved["User said: my name is Theodora"].source_session_id == later
