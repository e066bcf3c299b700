"""Long-term memory through the graph: loaded in planning, saved after the answer."""

from __future__ import annotations

import re
import uuid

from graph.remember import save_session_memories
from graph.turn import Turn, run_turn
from memory.memories import MemoryStore
from memory.sessions import Owner
from tests.graph.conftest import Harness, answer_of
from tests.support.users import create_user


async def ask_as(
    harness: Harness,
    store: MemoryStore,
    session_id: str,
    user_id: str,
    text: str,
    *,
    memory: bool = True,
) -> list[dict]:
    ctx = harness.context(
        memory_loader=lambda uid, query: store.load_relevant(uid, query), memories=store
    )
    turn = Turn(session_id, user_id, memory, {"id": str(uuid.uuid4()), "content": text})
    events = [e async for e in run_turn(harness.graph, harness.db.pool, ctx, turn)]
    await save_session_memories(harness.model, store, session_id)
    return events


async def test_recall_across_threads(harness: Harness) -> None:
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "ada@example.com")
    first = (await harness.sessions.create(Owner(user_id=user), title="Intro")).id
    await ask_as(harness, store, first, user, "my name is Ada Lovelace and I live in Tromsø")
    second = (await harness.sessions.create(Owner(user_id=user))).id
    events = await ask_as(harness, store, second, user, "what is my name?")
    assert "Your name is Ada Lovelace" in answer_of(events)
    loaded = next(e for e in events if e["type"] == "memory_loaded")
    assert loaded["user_id"] == user and loaded["memory_count"] == len(loaded["memories"])
    name = next(
        m for m in loaded["memories"] if "Ada Lovelace" in m["content"] and m["kind"] == "fact"
    )
    assert name["source_session_id"] == first
    kinds = {e["type"] for e in events}
    assert list(kinds & {"memory_loaded"}) and events.index(loaded) < next(
        i for i, e in enumerate(events) if e["type"] == "token"
    )
    assert "You live in Tromsø" in answer_of(
        await ask_as(harness, store, second, user, "where do I live?")
    )
    summaries = await store.list(user, kind="summary")
    # the second thread only asked two short questions: nothing worth a summary
    assert {m.source_session_id for m in summaries} == {first}


async def test_memory_off_neither_reads_nor_writes(harness: Harness) -> None:
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "grace@example.com")
    known = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, known, user, "my name is Grace")
    before = {m.id for m in await store.list(user)}
    incognito = (await harness.sessions.create(Owner(user_id=user), memory=False)).id
    events = await ask_as(
        harness, store, incognito, user, "what is my name? I live in Lima", memory=False
    )
    assert not [e for e in events if e["type"] == "memory_loaded"]
    assert "Grace" not in answer_of(events)
    await ask_as(harness, store, incognito, user, "my name is Someone Else", memory=False)
    assert {m.id for m in await store.list(user)} == before


async def test_the_offline_model_remembers_facts_of_any_kind(harness: Harness) -> None:
    """Every first-person statement is kept under its own subject; a later one
    of the same subject supersedes it, others stay; a question about the user is
    answered from the best matching memory, or says it knows nothing."""
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "many@example.com")
    first = (await harness.sessions.create(Owner(user_id=user), title="About me")).id
    await ask_as(
        harness,
        store,
        first,
        user,
        "My daughter is called Ingrid. I like tea. I like jazz. My car is a red Volvo. "
        "I live in Oslo and I work as a nurse.",
    )
    await ask_as(harness, store, first, user, "I live in Bergen now.")
    facts = {(m.key, m.content) for m in await store.list(user) if m.kind != "summary"}
    assert facts == {
        ("daughter", "User said: My daughter is called Ingrid"),
        ("likes tea", "User said: I like tea"),
        ("likes jazz", "User said: I like jazz"),
        ("car", "User said: My car is a red Volvo"),
        ("location", "User said: I live in Bergen now"),  # superseded Oslo
        ("work", "User said: I work as a nurse"),
    }
    second = (await harness.sessions.create(Owner(user_id=user))).id
    answer = answer_of(await ask_as(harness, store, second, user, "What is my daughter called?"))
    assert "You told me: My daughter is called Ingrid" in answer
    answer = answer_of(await ask_as(harness, store, second, user, "What car do I drive? Volvo?"))
    assert "You told me: My car is a red Volvo" in answer
    other = await create_user(harness.db, "blank@example.com")
    blank = (await harness.sessions.create(Owner(user_id=other))).id
    answer = answer_of(await ask_as(harness, store, blank, other, "Who is my daughter?"))
    assert "I don't know that yet" in answer


async def test_a_newcomer_introduced_in_one_thread_is_known_in_the_next(harness: Harness) -> None:
    """What a person tries first: a greeting with their name and home, a few
    things about themselves, then questions in other words in a new thread.
    Each is answered by the memory that answers it, not the first one loaded."""
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "marta@example.com")
    first = (await harness.sessions.create(Owner(user_id=user), title="Hello")).id
    for said in (
        "Hi, I'm Marta and I live in Porto.",
        "I work as a nurse at the city hospital.",
        "My sister Ana is getting married in June.",
    ):
        answer = answer_of(await ask_as(harness, store, first, user, said))
        assert "Thanks, I'll remember that" in answer, answer
    keys = {m.key for m in await store.list(user) if m.kind != "summary"}
    assert {"name", "location", "work"} <= keys
    second = (await harness.sessions.create(Owner(user_id=user))).id
    for question, expected in (
        ("What's my name?", "Your name is Marta."),
        ("Which city am I based in?", "You live in Porto."),
        ("What do I do for a living?", "You work as a nurse at the city hospital."),
        ("Who is getting married?", "You told me: My sister Ana is getting married in June"),
        ("How old am I?", "I don't know that yet"),
    ):
        answer = answer_of(await ask_as(harness, store, second, user, question))
        assert expected in answer, (question, answer)


async def test_a_thread_begun_by_a_request_to_forget_is_not_titled_by_it(
    harness: Harness,
) -> None:
    # The thread takes its first question as its title; its summary is titled
    # by it too, unless that asks to forget something: a later prompt would
    # still say what was forgotten.
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "forgets-first@example.com")
    told = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, told, user, "I'm allergic to shellfish.")
    thread = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, thread, user, "Forget that I'm allergic to shellfish.")
    await ask_as(harness, store, thread, user, "I moved to York last month.")
    assert (await harness.sessions.get(thread)).title == "Forget that I'm allergic to shellfish."
    learned = [m.content for m in await store.list(user)]
    assert "User said: I moved to York last month" in learned
    assert not [said for said in learned if "shellfish" in said], learned
    # the first thread's summary said nothing else: it is gone, not left empty
    assert {m.source_session_id for m in await store.list(user, kind="summary")} == {thread}


async def test_what_we_talked_about_last_time_is_the_latest_past_conversation(
    harness: Harness,
) -> None:
    """ "What did we talk about last time?" is answered from the latest past
    thread's summary (not by a search of past conversations for "last time",
    which finds nothing); an older thread is not the last time."""
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "recap@example.com")
    older = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, older, user, "I'm learning to bake sourdough bread")
    latest = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, latest, user, "I'm planning a trip to Portugal in June")
    await ask_as(harness, store, latest, user, "Can you help me pick between Lisbon and Porto?")
    now = (await harness.sessions.create(Owner(user_id=user))).id
    events = await ask_as(harness, store, now, user, "What did we talk about last time?")
    assert not [e for e in events if e["type"] == "progress" and "search" in str(e)]
    assert re.search(
        r"Last time \(\d{1,2} [A-Z][a-z]+ \d{4}\), you told me: I'm planning a trip to "
        r"Portugal in June\. You asked: “Can you help me pick between Lisbon and Porto\?”$",
        answer_of(events),
    ), answer_of(events)


async def test_a_greeting_in_a_new_thread_is_answered_by_name(harness: Harness) -> None:
    """The first thing a returning user sees: "Hi" in a new thread is answered
    with the name they gave in another."""
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "greet@example.com")
    first = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, first, user, "Hi! I'm Priya and I live in Toronto")
    second = (await harness.sessions.create(Owner(user_id=user))).id
    events = await ask_as(harness, store, second, user, "hi")
    assert answer_of(events).startswith("[offline model] Hello, Priya!"), answer_of(events)


async def test_a_name_typed_after_a_greeting_of_its_own_is_remembered(harness: Harness) -> None:
    """ "hey", then "im lucas", each turn saved on its own: the name is learned
    (the save reads the message before its turns), and known in a new thread."""
    store = MemoryStore(harness.db)
    user = await create_user(harness.db, "lucas@example.com")
    first = (await harness.sessions.create(Owner(user_id=user))).id
    await ask_as(harness, store, first, user, "hey")
    await ask_as(harness, store, first, user, "im lucas")
    assert "User said: I'm Lucas" in [m.content for m in await store.list(user)]
    second = (await harness.sessions.create(Owner(user_id=user))).id
    events = await ask_as(harness, store, second, user, "what is my name")
    assert answer_of(events).endswith("Your name is Lucas."), answer_of(events)
