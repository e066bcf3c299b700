"""A session as a file: versioned JSON for machines, Markdown for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.schemas import session_out
from memory.journal import Journal
from memory.models import ChatMessage, ChatSession

EXPORT_FORMAT = "threadline.session"
EXPORT_VERSION = 1
PAGE = 500


async def all_messages(journal: Journal, session_id: str) -> list[ChatMessage]:
    """Every message of a session, oldest first, read page by page."""
    messages: list[ChatMessage] = []
    while True:
        after = messages[-1].seq if messages else 0
        page, more = await journal.page(session_id, after_seq=after, limit=PAGE)
        messages.extend(page)
        if not more:
            return messages


def export_json(session: ChatSession, messages: list[ChatMessage]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "session": session_out(session, messages[-1] if messages else None),
        "messages": [m.as_dict() for m in messages],
    }


def export_markdown(session: ChatSession, messages: list[ChatMessage]) -> str:
    lines = [f"# {session.title or 'Untitled conversation'}", ""]
    lines.append(f"_Exported from Threadline on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC._")
    for message in messages:
        who = {"user": "You", "assistant": "Assistant"}.get(message.role, message.role.title())
        lines += ["", f"### {who} · {message.created_at:%Y-%m-%d %H:%M}", "", message.content]
    return "\n".join(lines) + "\n"
