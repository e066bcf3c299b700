"""A session as a file: Threadline's versioned JSON export (written and read
here, so the two sides cannot drift apart) and Markdown for people.

Everything read from a file is checked here, field by field, before it goes
near the database: each refusal is an UnreadableImport naming what is wrong.
"""

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
INT_MAX = 2**31 - 1  # processing_time_ms and token_count are INTEGER columns
MAX_TOOLS_USED = 100  # entries in one message's `tools_used`


@dataclass(frozen=True)
class ImportLimits:
    """How much one import may hold (the values come from the settings)."""

    max_sessions: int = 1000
    max_depth: int = 32  # JSON nesting, counting every level of the file
    max_message_chars: int = 32_000  # content and error messages, as on the socket


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
        lines += ["", f"### {who} · {message.created_at:%Y-%m-%d %H:%M}", "", _readable(message)]
    return "\n".join(lines) + "\n"


def _readable(message: ChatMessage) -> str:
    """A message's text, and what became of an answer that was stopped or failed
    (a stopped answer may have said nothing: no empty section)."""
    if (message.metadata_ or {}).get("cancelled"):
        note = "_(stopped)_" if message.content else "_(stopped before it said anything)_"
    elif message.has_error:
        note = f"_(failed: {message.error_message or 'error'})_"
    else:
        return message.content
    return f"{message.content}\n\n{note}" if message.content else note


def threadline_header(fields: dict[str, Any]) -> ImportedSession:
    """The session an export's top-level fields describe (its messages come apart)."""
    if fields.get("format") != FORMAT:
        raise UnreadableImport(f"not a Threadline export: `format` must be {FORMAT!r}")
    if fields.get("version") != VERSION:
        raise UnreadableImport(f"unsupported export version {str(fields.get('version'))[:20]!r}")
    session = fields.get("session")
    if not isinstance(session, dict) or "messages" not in fields:
        raise UnreadableImport("a Threadline export needs a `session` object and a `messages` list")
    return ImportedSession(
        id=_session_id(session.get("id")),
        title=session_title(session.get("title"), "session title"),
        created_at=read_timestamp(session.get("created_at"), "session created_at"),
        messages=[],
    )


def threadline_message(raw: Any, where: str, max_chars: int) -> ImportedMessage:
    """One message of an export, every field checked as the journal would store it."""
    if not isinstance(raw, dict):
        raise UnreadableImport(f"{where}: a message must be an object")
    message_id, role = raw.get("id"), raw.get("role")
    if not isinstance(message_id, str) or not MESSAGE_ID.fullmatch(message_id):
        raise UnreadableImport(f"{where}: missing or malformed message id")
    if not isinstance(role, str) or role not in ROLES:
        raise UnreadableImport(f"{where}: role must be one of {', '.join(ROLES)}")
    content = imported_text(raw.get("content"), f"{where}: content", max_chars)
    error_message = raw.get("error_message")
    if error_message is not None:
        error_message = imported_text(error_message, f"{where}: error_message", max_chars)
    has_error = raw.get("has_error", False)
    if not isinstance(has_error, bool):
        raise UnreadableImport(f"{where}: has_error must be true or false")
    extra = {
        "tools_used": _tools_used(raw.get("tools_used"), f"{where}: tools_used", max_chars),
        "processing_time_ms": _count(raw.get("processing_time_ms"), f"{where}: processing_time_ms"),
        "token_count": _count(raw.get("token_count"), f"{where}: token_count"),
        "has_error": has_error,
        "error_message": error_message,
    }
    created_at = read_timestamp(raw.get("created_at"), f"{where}: created_at")
    return ImportedMessage(message_id, role, content, created_at, extra)


def imported_text(value: Any, what: str, max_chars: int) -> str:
    """Text as a message holds it: a string PostgreSQL can store, at most `max_chars`."""
    if not isinstance(value, str):
        raise UnreadableImport(f"{what} must be text")
    if len(value) > max_chars:
        raise UnreadableImport(f"{what} is longer than {max_chars} characters")
    _check_storable(value, what)
    return value


def session_title(value: Any, what: str) -> str | None:
    """A title as a file gives it (cut to the title limit when the session is written)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UnreadableImport(f"{what} must be text")
    _check_storable(value, what)
    return value


def read_timestamp(value: Any, what: str = "time") -> datetime | None:
    """A time as files give it: epoch seconds (ChatGPT) or ISO 8601 (ours); UTC
    when the file names no zone."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            at = datetime.fromisoformat(value)
            return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise UnreadableImport(f"{what} is not a timestamp: {str(value)[:40]!r}")


def _check_storable(text: str, what: str) -> None:
    """The journal's rule (no NUL, no lone surrogate), as an import's refusal."""
    try:
        check_text(text, what=what)
    except InvalidInput as exc:
        raise UnreadableImport(str(exc)) from None


def _count(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT_MAX:
        raise UnreadableImport(f"{what} must be a whole number from 0 to {INT_MAX}")
    return value


def _tools_used(value: Any, what: str, max_chars: int) -> list[Any]:
    """A list of JSON values (the tools a turn called), small, and NUL-free throughout."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_TOOLS_USED:
        raise UnreadableImport(f"{what} must be a list of at most {MAX_TOOLS_USED} entries")
    pending: list[Any] = list(value)
    chars = 0
    while pending:  # a walk, not recursion: the parser bounded the depth, not our stack
        item = pending.pop()
        if isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
        elif isinstance(item, str):
            _check_storable(item, what)
            chars += len(item)
        if chars > max_chars:
            raise UnreadableImport(f"{what} holds more than {max_chars} characters of text")
    return value


def _session_id(raw: Any) -> str:
    """An export's session id: its UUID, or one derived from any other text."""
    if not isinstance(raw, str) or not raw or len(raw) > 128:
        raise UnreadableImport("the session's `id` must be text of 1 to 128 characters")
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        _check_storable(raw, "the session's `id`")
        return str(uuid.uuid5(IMPORT_NAMESPACE, raw))
