"""Memory saves after `done` (threads/memory_saver.py): each turn of a thread
asked at a person's pace is saved as it ends; a thread asked turn after turn
has its saves batched, one per SAVE_GAP_S, none lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from graph.offline import OfflineChatModel
from graph.turn import Turn
from memory.db import Database, fetch
from memory.journal import Journal, NewMessage
from memory.memories import MemoryStore
from memory.models import ChatSession
from memory.sessions import Owner, SessionStore
from tests.support.polling import until
from tests.support.users import create_user
from tests.threads.conftest import OpenRuntime
from threads import memory_saver
from threads.access import Credentials
from threads.cleanup import OWED_IDLE_S, cleanup_once
from threads.memory_saver import MemorySaver
from threads.runtime import Runtime


async def a_turn(journal: Journal, session_id: str, user_id: str, said: str) -> Turn:
    """A turn as the registry hands it to the saver: question and answer journaled."""
    query_id = str(uuid.uuid4())
    await journal.append(session_id, NewMessage(query_id, "user", said))
    await journal.append(session_id, NewMessage(str(uuid.uuid4()), "assistant", "noted"))
    return Turn(session_id, user_id, True, {"id": query_id, "content": said})


async def test_turns_in_quick_succession_are_saved_together_and_none_is_lost(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "saves@example.com")
    session = await sessions.create(Owner(user_id=user))
    memories = MemoryStore(db)
    saver = MemorySaver(OfflineChatModel(), memories)

    async def saved_upto() -> int:
        return (await sessions.get(session.id)).memory_saved_seq

    first = await a_turn(journal, session.id, user, "My name is Grace.")
    started = time.monotonic()
    await saver.after_turn(first)  # the thread's first save: as the turn ends
    assert await saved_upto() == 2
    for said in ("I live in Arlington.", "My favourite language is COBOL."):
        await saver.after_turn(await a_turn(journal, session.id, user, said))
    assert time.monotonic() - started < memory_saver.SAVE_GAP_S  # (a few ms here)
    assert await saved_upto() == 2  # waiting out the gap, not saved per turn

    async def all_saved() -> bool:
        return await saved_upto() == 6

    await until(all_saved, timeout=10)
    learned = " ".join(m.content for m in await memories.list(user))
    assert all(word in learned for word in ("Grace", "Arlington", "COBOL"))
    await saver.close()


async def test_turns_further_apart_than_the_gap_are_each_saved_as_they_end(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "paced@example.com")
    session = await sessions.create(Owner(user_id=user))
    saver = MemorySaver(OfflineChatModel(), MemoryStore(db))
    saver._began[session.id] = time.monotonic() - memory_saver.SAVE_GAP_S  # last save: a gap ago
    await saver.after_turn(await a_turn(journal, session.id, user, "I work as a nurse."))
    assert (await sessions.get(session.id)).memory_saved_seq == 2
    await saver.close()


async def test_forgetting_what_was_said_a_moment_ago_forgets_it(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Told, then asked to forget while the telling turn's save still waits out
    # the gap (made long here, so it surely waits): the forgetting turn saves
    # it first, so the memory is found and deleted, and no later save brings
    # it back.
    monkeypatch.setattr(memory_saver, "SAVE_GAP_S", 600.0)
    user = await create_user(runtime.deps.db, "forgets@example.com")
    session = await runtime.deps.sessions.create(Owner(user_id=user))
    watcher = runtime.threads.watch(session)

    async def answer_to(said: str) -> str:
        await runtime.threads.ask(session, {"id": str(uuid.uuid4()), "content": said})
        answer = ""
        while (frame := await asyncio.wait_for(watcher.queue.get(), 30))["type"] != "done":
            answer = frame["message"]["content"] if frame["type"] == "message" else answer
        return answer

    async def contents() -> list[str]:
        found = await runtime.deps.memories.list(user)
        return [m.content for m in found if m.kind != "summary"]

    async def saved_upto() -> int:
        return (await runtime.deps.sessions.get(session.id)).memory_saved_seq

    async def first_saved() -> bool:
        return await saved_upto() == 2

    await answer_to("My name is Grace.")
    await until(first_saved, timeout=10)  # the thread's first save: as its turn ends
    await answer_to("I play tennis on Sundays.")
    assert await saved_upto() == 2  # its save waits out the gap
    answer = await answer_to("Forget that I play tennis.")
    assert "nothing was forgotten" not in answer, answer
    assert await saved_upto() == 4  # saved before the forgetting turn's question
    await runtime.threads.memory_saver.save(session.id)  # the save the gap holds back
    assert await saved_upto() == 6
    assert await contents() == ["User said: My name is Grace"]
    learned = [m.content for m in await runtime.deps.memories.list(user)]
    assert not [said for said in learned if "tennis" in said], learned  # nor a summary


async def test_a_save_asked_while_another_runs_tells_what_that_one_wrote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A request to forget asks for the thread's owed save, then reloads its
    # memories if that save wrote. When the save of the turn before is still
    # running, the one asked waits for it and then finds nothing owed: it must
    # still say the memories changed, or the request is matched against
    # memories loaded before the fact it names was saved.
    running, release, results = asyncio.Event(), asyncio.Event(), iter([True, False, False])

    async def save_session_memories(*args: object, **kwargs: object) -> bool:
        if not running.is_set():
            running.set()
            await release.wait()
        return next(results)

    monkeypatch.setattr(memory_saver, "save_session_memories", save_session_memories)
    saver = MemorySaver(OfflineChatModel(), cast(MemoryStore, None))
    first = asyncio.create_task(saver.save("s1"))
    await running.wait()
    asked = asyncio.create_task(saver.save("s1", before_seq=5))
    await asyncio.sleep(0)  # one pass of the loop: `asked` now waits for the running save
    assert not asked.done()
    release.set()
    assert await first is True
    assert await asked is True  # it wrote nothing itself; the one it waited for did
    assert await saver.save("s1") is False  # nothing owed, none running: unchanged
    await saver.close()


async def test_an_edited_question_no_longer_teaches_what_it_said(runtime: Runtime) -> None:
    # "My dog is called Rex." saved, then edited to "My cat is called Tom.": the
    # dog goes from the memories and from the thread's summary; the cat is
    # learned; what another question of the thread still says stays.
    user = await create_user(runtime.deps.db, "edits@example.com")
    session = await runtime.deps.sessions.create(Owner(user_id=user))
    watcher = runtime.threads.watch(session)
    saver = runtime.threads.memory_saver

    async def until_done() -> None:
        while (await asyncio.wait_for(watcher.queue.get(), 30))["type"] != "done":
            pass

    for said in ("I live in Oslo.", "My dog is called Rex. I live in Oslo."):
        query_id = str(uuid.uuid4())
        await runtime.threads.ask(session, {"id": query_id, "content": said})
        await until_done()
        await saver.save(session.id)  # as the save after the turn (maybe held by the gap)
    opened = await runtime.deps.sessions.get(session.id)
    await runtime.threads.redo_in(
        opened, query_id, {"id": str(uuid.uuid4()), "content": "My cat is called Tom."}
    )
    await until_done()
    await saver.save(session.id)
    learned = [m.content for m in await runtime.deps.memories.list(user)]
    assert not [said for said in learned if "Rex" in said], learned
    assert "User said: My cat is called Tom" in learned
    assert "User said: I live in Oslo" in learned  # the first question still says it
    [summary] = [m.content for m in await runtime.deps.memories.list(user, kind="summary")]
    assert "Tom" in summary and "I live in Oslo" in summary


async def test_a_process_that_closes_right_after_answers_leaves_no_save_owed(
    runtime_with: OpenRuntime, db: Database
) -> None:
    # As `threadline chat` ending at once: the first turn's save was running
    # after `done`, the second's waiting out the gap; closing finishes both.
    async with runtime_with() as runtime:
        user = await create_user(runtime.deps.db, "closes@example.com")
        session = await runtime.deps.sessions.create(Owner(user_id=user))
        watcher = runtime.threads.watch(session)
        for said in ("I live in Oslo.", "My dog is called Rex."):
            await runtime.threads.ask(session, {"id": str(uuid.uuid4()), "content": said})
            while (await asyncio.wait_for(watcher.queue.get(), 30))["type"] != "done":
                pass
    learned = {m.content for m in await MemoryStore(db).list(user) if m.kind != "summary"}
    assert learned == {"User said: I live in Oslo", "User said: My dog is called Rex"}
    assert (
        await SessionStore(db, anon_ttl=timedelta(hours=1)).get(session.id)
    ).memory_saved_seq == 4


async def test_the_cleanup_finishes_saves_owed_by_threads_idle_a_while(runtime: Runtime) -> None:
    # A process ended owing a save while this one ran on: the cleanup's round
    # saves it once the thread has been idle OWED_IDLE_S, and not before.
    user = await create_user(runtime.deps.db, "owed@example.com")
    session = await runtime.deps.sessions.create(Owner(user_id=user))
    said = NewMessage(str(uuid.uuid4()), "user", "I work as a nurse.")
    await runtime.deps.journal.append(session.id, said)

    async def saved_upto() -> int:
        return (await runtime.deps.sessions.get(session.id)).memory_saved_seq

    await cleanup_once(runtime.threads)
    assert await saved_upto() == 0  # changed just now: its own process may still save it
    await fetch(
        runtime.deps.db,
        "UPDATE chat_sessions SET updated_at = now() - make_interval(secs => %(s)s)"
        " WHERE id = %(id)s",
        {"s": OWED_IDLE_S + 1, "id": session.id},
    )
    await cleanup_once(runtime.threads)
    assert await saved_upto() == 1
    assert [m.content for m in await runtime.deps.memories.list(user, kind="fact")] == [
        "User said: I work as a nurse"
    ]


async def test_a_users_other_thread_finishes_what_a_thread_still_owes_first(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A thread's save waits out the gap (made long here, so it surely waits).
    # A turn of the same thread leaves it waiting (a busy thread pays one save
    # per gap); a turn of the user's other thread finishes it before loading
    # memories; another user's turn does not touch it.
    monkeypatch.setattr(memory_saver, "SAVE_GAP_S", 600.0)
    db, sessions = runtime.deps.db, runtime.deps.sessions
    user, stranger = [await create_user(db, f"{n}@example.com") for n in ("busy", "stranger")]
    told, asked = [await sessions.create(Owner(user_id=user)) for _ in range(2)]
    elsewhere = await sessions.create(Owner(user_id=stranger))

    async def answer_to(session: ChatSession, said: str) -> str:
        watcher = runtime.threads.watch(session)
        try:
            await runtime.threads.ask(session, {"id": str(uuid.uuid4()), "content": said})
            answer = ""
            while (frame := await asyncio.wait_for(watcher.queue.get(), 30))["type"] != "done":
                answer = frame["message"]["content"] if frame["type"] == "message" else answer
            return answer
        finally:
            runtime.threads.unwatch(watcher)

    async def saved_upto(session: ChatSession) -> int:
        return (await sessions.get(session.id)).memory_saved_seq

    async def first_saved() -> bool:
        return await saved_upto(told) == 2

    await answer_to(told, "My name is Grace.")
    await until(first_saved, timeout=10)  # the thread's first save: as its turn ends
    await answer_to(told, "I play tennis on Sundays.")
    await answer_to(told, "What is my name?")
    assert await saved_upto(told) == 2  # its own turns leave the save to the gap
    await answer_to(elsewhere, "Hello there.")
    assert await saved_upto(told) == 2  # another user's turn leaves it too
    answer = await answer_to(asked, "What do I play on Sundays?")
    assert await saved_upto(told) == 6
    assert "tennis" in answer, answer


async def test_what_a_claimed_thread_said_is_listed_at_once(runtime: Runtime) -> None:
    # A visitor's thread, claimed after logging in: its save runs in the
    # background, and the memory list asked right after the claim waits for it.
    db, sessions = runtime.deps.db, runtime.deps.sessions
    user = await create_user(db, "claims@example.com")
    login, anon = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    await runtime.users.add_token(login, user, datetime.now(UTC) + timedelta(days=1))
    await runtime.users.anonymous.issue(anon, timedelta(hours=1))
    visited = await sessions.create(Owner(anon_token_hash=anon))
    await a_turn(runtime.deps.journal, visited.id, user, "My name is Claire.")
    caller = await runtime.threads.identify(
        Credentials(login_token_hash=login, anon_token_hash=anon)
    )
    await runtime.threads.claim(visited.id, caller)
    await runtime.threads.settle_memories(user)
    learned = [m.content for m in await runtime.deps.memories.list(user, kind="fact")]
    assert learned == ["User said: My name is Claire"]
