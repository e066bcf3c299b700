"""Import (Threadline and ChatGPT files), merge, and cleanup of expired sessions."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from graph.builder import build_graph
from graph.turn import read_window
from memory.db import Database
from memory.errors import InvalidInput, MessageIdConflict, SessionNotFound
from memory.import_reading import read_sessions
from memory.imports import import_sessions
from memory.journal import Journal, NewMessage
from memory.maintenance import merge_sessions
from memory.memories import MemoryDraft, MemoryStore
from memory.session_format import UnreadableImport
from memory.sessions import Owner, SessionStore
from tests.memory.files import export_file
from tests.support.chatgpt import conversation
from tests.support.users import create_user

CHATGPT = Path(__file__).parent.parent / "data" / "chatgpt_conversations.json"
TTL = timedelta(hours=24)  # the fixtures' anonymous TTL


async def test_chatgpt_import_follows_the_current_branch_and_is_idempotent(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    owner = Owner(user_id=await create_user(db, "jisoo@example.com"))
    with CHATGPT.open("rb") as f:
        report = await import_sessions(db, owner, read_sessions(f), anon_ttl=TTL)
    assert (report.sessions_created, report.messages_added) == (2, 3)
    seoul = report.session_ids[0]
    page, _ = await journal.page(seoul)
    assert [m.content for m in page] == [
        "서울에서 3일 동안 뭘 하면 좋을까요?",
        "Day 1: Gyeongbokgung. Day 2: Bukchon. Day 3: Namsan.",
        "Danke! And my name is Jisoo.",
    ]
    assert (await sessions.get(seoul, owner)).title == "Trip to Seoul"
    with CHATGPT.open("rb") as f:
        again = await import_sessions(db, owner, read_sessions(f), anon_ttl=TTL)
    assert (again.sessions_created, again.messages_added, again.messages_skipped) == (0, 0, 3)
    assert (await sessions.get(seoul)).message_count == 3


async def test_threadline_export_round_trip_and_the_model_sees_it(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    from graph.offline import OfflineChatModel
    from tests.graph.conftest import Harness, answer_of

    owner = Owner(anon_token_hash="i" * 64)
    session_id = str(uuid.uuid4())
    document = export_file(session_id, [("user", "my name is Imogen"), ("assistant", "Hi Imogen")])
    await import_sessions(db, owner, read_sessions(io.BytesIO(document)), anon_ttl=TTL)
    harness = Harness(db, sessions, journal, build_graph(), OfflineChatModel())
    assert "Imogen" in answer_of(await harness.ask(session_id, "what is my name?"))
    state = await read_window(harness.graph, db.pool, session_id)
    assert [m.content for m in state["messages"]][:2] == ["my name is Imogen", "Hi Imogen"]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"not json at all", "not JSON"),
        (
            b'{"format": "threadline.session", "version": 1, "session": {}, "messages": [',
            "not valid JSON",
        ),
        (b'{"format": "something else"}', "not a Threadline export"),
        (b'{"format": "threadline.session", "version": 7}', "unsupported export version"),
        (
            b'{"format": "threadline.session", "version": 1, "session": {"id": "x"},'
            b' "messages": [{"id": "a b"}]}',
            "malformed message id",
        ),
        (b'[{"mapping": 5}]', "expected an object with a `mapping`"),
        (b"", "not JSON"),
    ],
)
async def test_unreadable_files_write_nothing(
    db: Database, sessions: SessionStore, content: bytes, problem: str
) -> None:
    owner = Owner(anon_token_hash="j" * 64)
    good = export_file(str(uuid.uuid4()), [("user", "first")])
    with pytest.raises(UnreadableImport, match=problem):
        # The good session comes first: the bad file must roll it back too.
        await import_sessions(
            db,
            owner,
            [*read_sessions(io.BytesIO(good)), *read_sessions(io.BytesIO(content))],
            anon_ttl=TTL,
        )
    assert (await sessions.list(owner))[0] == []


async def test_ids_of_another_owner_import_as_new_ones_and_reveal_nothing(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    session_id = str(uuid.uuid4())
    mine, theirs = Owner(anon_token_hash="k" * 64), Owner(anon_token_hash="l" * 64)
    first = export_file(session_id, [("user", "x"), ("assistant", "x2")])
    await import_sessions(db, mine, read_sessions(io.BytesIO(first)), anon_ttl=TTL)
    # Their file names my session and my message: it imports as a session of
    # theirs, under ids derived from mine, and mine is untouched.
    clash = export_file(session_id, [("user", "y")])
    report = await import_sessions(db, theirs, read_sessions(io.BytesIO(clash)), anon_ttl=TTL)
    assert (report.sessions_created, report.messages_added) == (1, 1)
    (copy,) = report.session_ids
    assert copy != session_id
    assert [m.content for m in (await journal.page(copy))[0]] == ["y"]
    assert [m.content for m in (await journal.page(session_id))[0]] == ["x", "x2"]
    with pytest.raises(SessionNotFound):
        await sessions.get(session_id, theirs)
    # Importing it again finds the same derived ids: nothing is added.
    again = await import_sessions(db, theirs, read_sessions(io.BytesIO(clash)), anon_ttl=TTL)
    assert (again.sessions_created, again.messages_added, again.session_ids) == (0, 0, [copy])
    # A message id of mine in a session of theirs: derived as well.
    other = json.loads(export_file(str(uuid.uuid4()), [("user", "z")]))
    other["messages"][0]["id"] = f"{session_id[:8]}-1"
    moved = await import_sessions(
        db, theirs, read_sessions(io.BytesIO(json.dumps(other).encode())), anon_ttl=TTL
    )
    assert moved.messages_added == 1
    # A message id of my own, in another session of mine, is still a conflict.
    other["session"]["id"] = str(uuid.uuid4())
    with pytest.raises(MessageIdConflict):
        await import_sessions(
            db, mine, read_sessions(io.BytesIO(json.dumps(other).encode())), anon_ttl=TTL
        )


async def test_merge_orders_by_time_and_removes_the_other(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    user = await create_user(db, "merge@example.com")
    owner = Owner(user_id=user)
    first, second = await sessions.create(owner, title="first"), await sessions.create(owner)
    for session, text in [(first, "a1"), (second, "b1"), (first, "a2"), (second, "b2")]:
        await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", text))
    memories = MemoryStore(db)
    fact = await memories.add(
        user, MemoryDraft("fact", "name", "name: B"), source_session_id=second.id
    )
    merged = await merge_sessions(sessions, first.id, second.id, owner)
    page, _ = await journal.page(first.id)
    assert [m.content for m in page] == ["a1", "b1", "a2", "b2"]
    assert [m.seq for m in page] == [1, 2, 3, 4]
    assert (merged.message_count, merged.last_seq, merged.title) == (4, 4, "first")
    with pytest.raises(SessionNotFound):
        await sessions.get(second.id)
    assert (await memories.get(user, fact.id)).source_session_id == first.id
    with pytest.raises(InvalidInput, match="cannot merge a session with itself"):
        await merge_sessions(sessions, first.id, first.id.upper(), owner)
    stranger = await sessions.create(Owner(anon_token_hash="m" * 64))
    with pytest.raises(SessionNotFound):
        await merge_sessions(sessions, first.id, stranger.id, owner)
    # With no owner given (an operator's CLI), the two must still share one.
    with pytest.raises(InvalidInput, match="only sessions of the same owner"):
        await merge_sessions(sessions, first.id, stranger.id, None)


async def test_a_large_chatgpt_export_is_streamed_in_bounded_memory(
    db: Database, sessions: SessionStore, tmp_path: Path
) -> None:
    """~22 MB of conversations: Python never holds the file, only one conversation."""
    import tracemalloc

    path = tmp_path / "conversations.json"
    body = "word " * 1100  # ~5.5 KB a message
    with path.open("w") as f:
        f.write("[")
        for c in range(800):
            texts = [f"{c}/{m} {body}" for m in range(5)]
            f.write(("," if c else "") + json.dumps(conversation(c, texts)))
        f.write("]")
    size = path.stat().st_size
    assert size > 20 * 2**20
    owner = Owner(anon_token_hash="big" + "0" * 61)
    tracemalloc.start()
    try:
        with path.open("rb") as f:
            report = await import_sessions(db, owner, read_sessions(f), anon_ttl=TTL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report.sessions_created, report.messages_added) == (800, 4000)
    assert peak < size / 4, f"peak {peak / 2**20:.1f} MB for a {size / 2**20:.1f} MB file"
