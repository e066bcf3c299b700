"""A session as a file: Threadline's versioned JSON export (written and read
here, so the two sides cannot drift apart) and Markdown for people."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memory.errors import InvalidInput
from memory.journal import MESSAGE_ID, ROLES, check_text
from memory.models import ChatMessage, ChatSession

FORMAT = "threadline.session"
VERSION = 1
# Ids that a file does not give as UUIDs are derived in this namespace.
IMPORT_NAMESPACE = uuid.UUID("0b7c3a55-6d0e-4d8a-a0f5-3f1f3e0e8b21")


class UnreadableImport(InvalidInput):
    """The file is not something we can import; the message says what is wrong."""

    code = "invalid_import"


@dataclass
class ImportedMessage:
    id: str
    role: str
    content: str
    created_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImportedSession:
    id: str
    title: str | None
    created_at: datetime | None
    messages: list[ImportedMessage]


def export_document(session: dict[str, Any], messages: Sequence[ChatMessage]) -> dict[str, Any]:
    """The JSON export; `session` comes serialized already, as the caller shows it."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "session": session,
        "messages": [m.as_dict() for m in messages],
    }


def export_markdown(session: ChatSession, messages: Sequence[ChatMessage]) -> str:
    """The conversation for reading; it is not read back."""
    lines = [f"# {session.title or 'Untitled conversation'}", ""]
    lines.append(f"_Exported from Threadline on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC._")
    for message in messages:
        who = {"user": "You", "assistant": "Assistant"}.get(message.role, message.role.title())
        lines += ["", f"### {who} · {message.created_at:%Y-%m-%d %H:%M}", "", message.content]
    return "\n".join(lines) + "\n"


def threadline_session(document: Any) -> ImportedSession:
    """The session of a Threadline export (`format` FORMAT, `version` VERSION)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UnreadableImport(f"not a Threadline export: `format` must be {FORMAT!r}")
    if document.get("version") != VERSION:
        raise UnreadableImport(f"unsupported export version {document.get('version')!r}")
    session, messages = document.get("session"), document.get("messages")
    if not isinstance(session, dict) or not isinstance(messages, list):
        raise UnreadableImport("a Threadline export needs a `session` object and a `messages` list")
    return ImportedSession(
        id=_session_id(session.get("id")),
        title=session.get("title") if isinstance(session.get("title"), str) else None,
        created_at=read_timestamp(session.get("created_at")),
        messages=[_message(m, f"message {i}") for i, m in enumerate(messages)],
    )


def read_timestamp(value: Any) -> datetime | None:
    """A time as files give it: epoch seconds (ChatGPT) or ISO 8601 (ours)."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, int | float) or hasattr(value, "as_integer_ratio"):
            return datetime.fromtimestamp(float(value), UTC)
        return datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise UnreadableImport(f"not a timestamp: {str(value)[:40]!r}") from exc


def _session_id(raw: Any) -> str:
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        return str(uuid.uuid5(IMPORT_NAMESPACE, str(raw)))


def _message(raw: Any, where: str) -> ImportedMessage:
    if not isinstance(raw, dict):
        raise UnreadableImport(f"{where}: a message must be an object")
    message_id, role, content = raw.get("id"), raw.get("role"), raw.get("content")
    if not isinstance(message_id, str) or not MESSAGE_ID.match(message_id):
        raise UnreadableImport(f"{where}: missing or malformed message id")
    if role not in ROLES:
        raise UnreadableImport(f"{where}: role must be one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise UnreadableImport(f"{where}: content must be text")
    check_text(content)
    keep = {k: raw[k] for k in ("tools_used", "processing_time_ms", "token_count") if k in raw}
    keep["has_error"] = bool(raw.get("has_error", False))
    keep["error_message"] = raw.get("error_message")
    return ImportedMessage(message_id, role, content, read_timestamp(raw.get("created_at")), keep)
