"""The export format: what export writes, import reads back as it was."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

from memory.db import Database
from memory.import_reading import read_sessions
from memory.imports import import_sessions
from memory.journal import Journal, NewMessage
from memory.models import ChatMessage, ChatSession
from memory.session_format import FORMAT, VERSION, export_document, export_markdown
from memory.sessions import Owner, SessionStore

OWNER = Owner(anon_token_hash="f" * 64)
KEPT = ("id", "seq", "role", "content", "created_at", "token_count", "has_error")


async def test_an_export_imports_back_as_it_was(
    db: Database, sessions: SessionStore, journal: Journal
) -> None:
    session = await sessions.create(OWNER, title="Trip")
    for role, text in [("user", "서울에 가요"), ("assistant", "좋아요"), ("user", "고마워요")]:
        await journal.append(session.id, NewMessage(str(uuid.uuid4()), role, text, token_count=3))
    messages, _ = await journal.page(session.id)
    shown = {"id": session.id, "title": session.title, "created_at": session.created_at.isoformat()}
    document = export_document(shown, messages)
    assert (document["format"], document["version"], document["session"]) == (
        FORMAT,
        VERSION,
        shown,
    )
    await sessions.delete(session.id, OWNER)

    file = io.BytesIO(json.dumps(document).encode())
    report = await import_sessions(db, OWNER, read_sessions(file), anon_ttl=timedelta(hours=24))
    assert report.session_ids == [session.id]
    restored, _ = await journal.page(session.id)
    assert [{k: m.as_dict()[k] for k in KEPT} for m in restored] == [
        {k: m.as_dict()[k] for k in KEPT} for m in messages
    ]
    back = await sessions.get(session.id, OWNER)
    assert (back.title, back.created_at, back.message_count) == ("Trip", session.created_at, 3)


def test_markdown_reads_as_a_conversation() -> None:
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    messages = [
        ChatMessage(id="1", role="user", content="hi", created_at=at),
        ChatMessage(id="2", role="assistant", content="hello", created_at=at),
        ChatMessage(id="3", role="tool", content="42", created_at=at),
    ]
    text = export_markdown(ChatSession(id=str(uuid.uuid4()), title=None), messages)
    assert text.startswith("# Untitled conversation\n\n_Exported from Threadline on ")
    assert text.endswith(
        "### You · 2026-01-02 03:04\n\nhi\n\n"
        "### Assistant · 2026-01-02 03:04\n\nhello\n\n"
        "### Tool · 2026-01-02 03:04\n\n42\n"
    )


def test_markdown_says_what_became_of_a_stopped_or_failed_answer() -> None:
    at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    stopped = {"cancelled": True}
    messages = [
        ChatMessage(id="1", role="assistant", content="", created_at=at, metadata_=stopped),
        ChatMessage(id="2", role="assistant", content="Once", created_at=at, metadata_=stopped),
        ChatMessage(
            id="3",
            role="assistant",
            content="",
            created_at=at,
            has_error=True,
            error_message="the model is unavailable",
        ),
    ]
    text = export_markdown(ChatSession(id=str(uuid.uuid4()), title="t"), messages)
    sections = text.split("### Assistant · 2026-01-02 03:04\n\n")[1:]
    assert [s.strip() for s in sections] == [
        "_(stopped before it said anything)_",
        "Once\n\n_(stopped)_",
        "_(failed: the model is unavailable)_",
    ]
