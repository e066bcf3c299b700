"""The memory store: upserts, isolation, relevance, and race-safe saves."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory import recall
from memory.db import Database
from memory.journal import Journal, NewMessage
from memory.memories import MemoryDraft, MemoryNotFound, MemoryStore
from memory.owed import owed_save
from memory.sessions import Owner, SessionStore
from tests.support.polling import until
from tests.support.users import create_user


@pytest.fixture
def memories(db: Database) -> MemoryStore:
    return MemoryStore(db)


async def test_keyed_memories_latest_wins(db: Database, memories: MemoryStore) -> None:
    user = await create_user(db, "a@example.com")
    await memories.add(user, MemoryDraft("preference", "language", "language: Python"))
    await memories.add(user, MemoryDraft("preference", "language", "language: Rust"))
    await memories.add(user, MemoryDraft("fact", None, "has a cat"))
    listed = await memories.list(user, kind="preference")
    assert [m.content for m in listed] == ["language: Rust"]
    assert [m.content for m in await memories.list(user, q="cat")] == ["has a cat"]


async def test_another_users_memory_answers_like_a_missing_one(
    db: Database, memories: MemoryStore
) -> None:
    alice, bob = await create_user(db, "alice@x.org"), await create_user(db, "bob@x.org")
    secret = await memories.add(alice, MemoryDraft("fact", None, "alice's secret"))
    for attempt in (
        memories.get(bob, secret.id),
        memories.update(bob, secret.id, content="pwned", key=None),
        memories.delete(bob, secret.id),
        memories.get(bob, str(uuid.uuid4())),
    ):
        with pytest.raises(MemoryNotFound):
            await attempt
    assert (await memories.get(alice, secret.id)).content == "alice's secret"
    assert await memories.list(bob) == []


async def test_a_deleted_fact_leaves_the_summaries_that_say_it(
    db: Database, memories: MemoryStore, sessions: SessionStore, journal: Journal
) -> None:
    user, other = await create_user(db, "f@example.com"), await create_user(db, "g@x.org")
    summary = "\n".join(
        [
            "Conversation “Sundays”:",
            "- user said: I play  tennis on Sundays",
            "- user said: My name is Grace",
            "- user said: I play tennis on Sundays and Mondays",
            "- user said: I play tennis on Sundaysxx",  # another word: not it
            "- user asked: Which courts are open?",
        ]
    )
    for owner in (user, other):
        session = await sessions.create(Owner(user_id=owner))
        await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "hi"))
        assert await memories.save_from_session(session.id, owner, [], summary, upto_seq=1)
    fact = await memories.add(
        user, MemoryDraft("fact", None, "User said: I play tennis on Sundays")
    )
    kept = await memories.add(user, MemoryDraft("fact", "name", "User said: My name is Grace"))
    await memories.delete(user, fact.id)
    [left] = await memories.list(user, kind="summary")
    assert left.content.splitlines() == [
        "Conversation “Sundays”:",
        "- user said: My name is Grace",
        "- user said: I play tennis on Sundaysxx",
        "- user asked: Which courts are open?",
    ]
    [theirs] = await memories.list(other, kind="summary")
    assert theirs.content == summary  # another user's summary is theirs
    await memories.update(user, kept.id, content="User said: My name is Grace Hopper", key=None)
    [left] = await memories.list(user, kind="summary")
    assert "- user said: My name is Grace Hopper" in left.content.splitlines()  # corrected
    await memories.delete(user, left.id)  # a summary deleted takes nothing else
    assert [m.id for m in await memories.list(user)] == [kept.id]


async def test_a_deleted_fact_leaves_a_models_summary_lines_that_say_it_in_other_words(
    db: Database, memories: MemoryStore, sessions: SessionStore, journal: Journal
) -> None:
    # A model learns and summarises in its own words: the lines naming all the
    # forgotten fact names go, the others stay (one shared word is not it).
    user = await create_user(db, "model-words@example.com")
    summary = "\n".join(
        [
            "Conversation “Weekend plans”:",
            "- The user mentioned playing tennis on Sundays with a friend.",
            "- User plays tennis on Sundays",
            "- Asked which tennis courts are open on Saturdays.",
            "- The user's sister Ana lives in Porto.",
            "- User doesn't like early starts.",
        ]
    )
    session = await sessions.create(Owner(user_id=user))
    await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "hi"))
    assert await memories.save_from_session(session.id, user, [], summary, upto_seq=1)
    tennis = await memories.add(
        user, MemoryDraft("fact", None, "The user plays tennis on Sundays.")
    )
    early = await memories.add(user, MemoryDraft("preference", None, "Dislikes early starts"))
    mornings = await memories.add(user, MemoryDraft("fact", None, "User likes early starts"))
    await memories.delete(user, tennis.id)
    [left] = await memories.list(user, kind="summary")
    assert left.content.splitlines() == [
        "Conversation “Weekend plans”:",
        "- Asked which tennis courts are open on Saturdays.",
        "- The user's sister Ana lives in Porto.",
        "- User doesn't like early starts.",
    ]
    await memories.delete(user, early.id)  # "dislik" is not "not like": the line stays
    await memories.delete(user, mornings.id)  # the line says the opposite: it stays
    [left] = await memories.list(user, kind="summary")
    assert "- User doesn't like early starts." in left.content.splitlines()


async def test_unlearning_a_retracted_question_takes_back_a_models_memories_of_it(
    db: Database, memories: MemoryStore, sessions: SessionStore, journal: Journal
) -> None:
    # "My dog is called Rex." edited away: the memory a model learned from it in
    # its own words goes; one saying more, or one another question of the
    # thread still says, or one of another thread, stays.
    async def thread(user: str, *questions: str) -> str:
        session = await sessions.create(Owner(user_id=user))
        for question in questions:
            await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", question))
        drafts = [
            MemoryDraft("fact", None, "The user has a dog named Rex."),
            MemoryDraft("fact", None, "The user's dog Rex is 3 years old."),
            MemoryDraft("fact", None, "The user lives in Oslo."),
        ]
        saved = await memories.save_from_session(
            session.id, user, drafts, None, upto_seq=len(questions)
        )
        assert saved
        return session.id

    ana, ben = await create_user(db, "ana@example.com"), await create_user(db, "ben@x.org")
    retracted = await thread(ana, "I live in Oslo.")
    assert await memories.unlearn(ana, retracted, ["My dog is called Rex"]) == 1
    assert sorted(m.content for m in await memories.list(ana)) == [
        "The user lives in Oslo.",
        "The user's dog Rex is 3 years old.",
    ]
    still_said = await thread(ben, "I live in Oslo.", "Rex is what I call my dog.")
    assert await memories.unlearn(ben, still_said, ["My dog is called Rex"]) == 0
    assert len(await memories.list(ben)) == 3


async def test_relevant_memories_for_a_question(db: Database, memories: MemoryStore) -> None:
    user = await create_user(db, "c@example.com")
    for i in range(30):
        await memories.add(
            user, MemoryDraft("entity", f"project {i}", f"project {i}: a side project")
        )
    await memories.add(user, MemoryDraft("fact", "name", "User said: my name is Ada Lovelace"))
    await memories.add(user, MemoryDraft("fact", "location", "User said: I live in Tromsø"))
    await memories.add(user, MemoryDraft("entity", "서울", "서울에 있는 회사에서 일해요"))
    for i in range(30):  # newer than the facts, so recency alone would not find them
        await memories.add(user, MemoryDraft("entity", f"thing {i}", f"thing {i}: trivia"))
    name = await memories.load_relevant(user, "what is my name?", budget_tokens=400)
    assert "User said: my name is Ada Lovelace" in [m["content"] for m in name]
    home = await memories.load_relevant(user, "where do I live?", budget_tokens=400)
    assert "User said: I live in Tromsø" in [m["content"] for m in home]
    korean = await memories.load_relevant(user, "서울 회사", budget_tokens=400)
    assert "서울에 있는 회사에서 일해요" in [m["content"] for m in korean]
    small = await memories.load_relevant(user, "anything", budget_tokens=100)
    assert sum(len(m["content"]) // 4 + 8 for m in small) <= 100
    assert len({m["id"] for m in name}) == len(name)


async def test_the_similarity_top_up_runs_only_when_it_could_find_something(
    db: Database, memories: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load is one statement when the recency lists hold every fact and entity
    of the user and full text matched them all; else the trigram top-up runs."""
    statements: list[str] = []
    run = recall.run_unprepared

    async def counted(
        db: Database, compiled: tuple[str, dict[str, object]], params: object
    ) -> list:
        statements.append(compiled[0])
        return await run(db, compiled, params)

    monkeypatch.setattr(recall, "run_unprepared", counted)

    async def statements_of(user: str, question: str) -> tuple[int, list[dict[str, object]]]:
        statements.clear()
        loaded = await memories.load_relevant(user, question, budget_tokens=400)
        return len(statements), loaded

    new_user = await create_user(db, "new@example.com")
    assert (await statements_of(new_user, "what is my name?"))[0] == 1

    user = await create_user(db, "few@example.com")
    await memories.add(user, MemoryDraft("fact", "name", "User said: my name is Ada Lovelace"))
    count, loaded = await statements_of(user, "what is my name?")
    assert count == 1 and [m["relevant"] for m in loaded] == [True]

    # Full text does not split "서울 회사" out of these words; trigram similarity does.
    await memories.add(user, MemoryDraft("entity", "서울", "서울에 있는 회사에서 일해요"))
    count, loaded = await statements_of(user, "서울 회사")
    relevant = [m["content"] for m in loaded if m["relevant"]]
    assert count == 2 and relevant == ["서울에 있는 회사에서 일해요"]

    for i in range(5):  # more facts than the recency list holds: some may be unseen
        await memories.add(user, MemoryDraft("fact", f"pet {i}", f"User said: my pet {i} is a cat"))
    assert (await statements_of(user, "what is my name?"))[0] == 2


async def test_save_is_idempotent_and_refuses_a_session_no_longer_theirs(
    db: Database, memories: MemoryStore, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "d@example.com")
    session = await sessions.create(Owner(user_id=user))
    for i in range(2):
        await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", f"m{i}"))
    drafts = [MemoryDraft("fact", "name", "User said: my name is Ada")]
    assert await memories.save_from_session(session.id, user, drafts, "summary one", upto_seq=2)
    assert not await memories.save_from_session(session.id, user, drafts, "again", upto_seq=2)
    assert [m.content for m in await memories.list(user, kind="summary")] == ["summary one"]
    other = await create_user(db, "e@example.com")
    await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "m3"))
    assert not await memories.save_from_session(session.id, other, drafts, "x", upto_seq=3)
    await sessions.delete(session.id, Owner(user_id=user), forget=True)
    assert not await memories.save_from_session(session.id, user, drafts, "late", upto_seq=3)
    assert await memories.list(user) == []


async def test_a_summary_alone_is_saved_once_and_only_while_theirs(
    db: Database, memories: MemoryStore, sessions: SessionStore, journal: Journal
) -> None:
    """A save with nothing learned but its summary (most turns) takes one
    statement: the same rules as a save with memories to write."""
    user = await create_user(db, "s@example.com")
    session = await sessions.create(Owner(user_id=user))
    for i in range(4):
        await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", f"m{i}"))

    async def summaries() -> list[str]:
        return [m.content for m in await memories.list(user, kind="summary")]

    async def saved_seq() -> int:
        return (await sessions.get(session.id)).memory_saved_seq

    assert await memories.save_from_session(session.id, user, [], "first", upto_seq=1)
    assert not await memories.save_from_session(session.id, user, [], "again", upto_seq=1)
    assert (await summaries(), await saved_seq()) == (["first"], 1)
    assert await memories.save_from_session(session.id, user, [], "second", upto_seq=2)
    assert (await summaries(), await saved_seq()) == (["second"], 2)  # rewritten, one row
    assert (await owed_save(db, session.id)).summary == "second"
    # No summary: the save is marked, the summary stays.
    assert await memories.save_from_session(session.id, user, [], None, upto_seq=3)
    assert (await summaries(), await saved_seq()) == (["second"], 3)
    other = await create_user(db, "t@example.com")
    assert not await memories.save_from_session(session.id, other, [], "theirs", upto_seq=4)
    assert await memories.list(other) == []
    assert await saved_seq() == 3
    await sessions.delete(session.id, Owner(user_id=user), forget=True)
    assert not await memories.save_from_session(session.id, user, [], "late", upto_seq=4)
    assert await memories.list(user) == []
    assert await summaries() == []


@pytest.mark.parametrize("learned", ["summary alone", "with a fact"])
async def test_a_save_waiting_on_a_forgetting_delete_writes_nothing(
    db: Database,
    memories: MemoryStore,
    sessions: SessionStore,
    journal: Journal,
    database_url: str,
    learned: str,
) -> None:
    """A save that comes while a delete (with forget) holds the session row
    waits for it, then finds no session: nothing is left behind."""
    user = await create_user(db, "f@example.com")
    session = await sessions.create(Owner(user_id=user))
    await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "my name is Ada"))
    drafts = [MemoryDraft("fact", "name", "User said: my name is Ada")]
    async with await psycopg.AsyncConnection.connect(database_url) as deleting:
        # The delete's own steps (SessionStore.delete), its commit held back.
        await deleting.execute(
            "SELECT id FROM chat_sessions WHERE id = %s FOR UPDATE", (session.id,)
        )
        await deleting.execute("DELETE FROM memories WHERE source_session_id = %s", (session.id,))
        await deleting.execute("DELETE FROM chat_sessions WHERE id = %s", (session.id,))
        saving = asyncio.ensure_future(
            memories.save_from_session(
                session.id, user, drafts if learned == "with a fact" else [], "s", upto_seq=1
            )
        )

        async def save_waits_on_the_row() -> bool:
            cur = await deleting.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            row = await cur.fetchone()
            return row is not None and row[0] > 0

        await until(save_waits_on_the_row)
        assert not saving.done()
        await deleting.commit()
    assert not await saving
    assert await memories.list(user) == []


async def test_a_session_with_memory_off_saves_nothing(
    db: Database, memories: MemoryStore, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "u@example.com")
    session = await sessions.create(Owner(user_id=user), memory=False)
    await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "my name is Ada"))
    drafts = [MemoryDraft("fact", "name", "User said: my name is Ada")]
    for learned in ([], drafts):
        assert not await memories.save_from_session(session.id, user, learned, "s", upto_seq=1)
    assert await memories.list(user) == []
    assert (await sessions.get(session.id)).memory_saved_seq == 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["alice", "bob", "carol"]), st.sampled_from(["add", "edit", "delete"])
        ),
        min_size=1,
        max_size=12,
    )
)
async def test_users_never_see_each_others_memories(db: Database, steps: list) -> None:
    store = MemoryStore(db)
    users = {
        name: await create_user(db, f"{name}-{uuid.uuid4().hex[:8]}@x.org")
        for name in ("alice", "bob", "carol")
    }
    owned: dict[str, set[str]] = {name: set() for name in users}
    for name, action in steps:
        user = users[name]
        others = {m for other, ids in owned.items() if other != name for m in ids}
        if action == "add":
            memory = await store.add(user, MemoryDraft("fact", None, f"{name} fact {uuid.uuid4()}"))
            owned[name].add(memory.id)
        for foreign in others:
            with pytest.raises(MemoryNotFound):
                if action == "edit":
                    await store.update(user, foreign, content="stolen", key=None)
                elif action == "delete":
                    await store.delete(user, foreign)
                else:
                    await store.get(user, foreign)
        visible = {m.id for m in await store.list(user)}
        loaded = {m["id"] for m in await store.load_relevant(user, "fact")}
        assert visible == owned[name] and loaded <= owned[name]
