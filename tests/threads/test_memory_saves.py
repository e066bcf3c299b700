"""Memory saves after `done` (threads/memory_saver.py): each turn of a thread
asked at a person's pace is saved as it ends; a thread asked turn after turn
has its saves batched, one per SAVE_GAP_S, none lost."""

from __future__ import annotations

import time
import uuid

from graph.offline import OfflineChatModel
from graph.turn import Turn
from memory.db import Database
from memory.journal import Journal, NewMessage
from memory.memories import MemoryStore
from memory.sessions import Owner, SessionStore
from tests.support.polling import until
from tests.support.users import create_user
from threads import memory_saver
from threads.memory_saver import MemorySaver


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
