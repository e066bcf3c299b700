"""Importing conversations: Threadline's own export and ChatGPT's
`conversations.json`, streamed (bounded memory), written in one transaction,
and idempotent: message ids are keys, so importing a file twice adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import ijson
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.errors import MessageIdConflict, SessionNotFound
from memory.journal import check_text, grow_session
from memory.models import ChatMessage, ChatSession
from memory.session_format import (
    IMPORT_NAMESPACE,
    ImportedMessage,
    ImportedSession,
    UnreadableImport,
    read_timestamp,
    threadline_session,
)
from memory.sessions import Owner, clean_title

BATCH = 500


def import_scope(owner: Owner) -> str:
    """The scope in which an owner's imported ChatGPT ids are derived."""
    return f"user:{owner.user_id}" if owner.user_id else f"anon:{owner.anon_token_hash}"


@dataclass
class ImportReport:
    sessions_created: int = 0
    sessions_extended: int = 0
    messages_added: int = 0
    messages_skipped: int = 0
    session_ids: list[str] = field(default_factory=list)


def chatgpt_session(conversation: Any, index: int, scope: str) -> ImportedSession:
    """One conversation of ChatGPT's export: the path from its current node back
    to the root of `mapping`, in order, keeping user and assistant text.

    Its ids are derived from ChatGPT's within `scope` (the importing owner):
    importing twice adds nothing, and two people importing the same export
    never collide.
    """
    where = f"conversation {index}"
    if not isinstance(conversation, dict) or not isinstance(conversation.get("mapping"), dict):
        raise UnreadableImport(f"{where}: expected an object with a `mapping`")
    mapping: dict[str, Any] = conversation["mapping"]
    node_id = conversation.get("current_node")
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if not isinstance(node, dict):
            raise UnreadableImport(f"{where}: node {node_id!r} is not an object")
        path.append(node)
        node_id = node.get("parent")
    messages = [m for m in (_chatgpt_message(n, where, scope) for n in reversed(path)) if m]
    raw_id = conversation.get("id") or conversation.get("conversation_id") or index
    return ImportedSession(
        id=str(uuid.uuid5(IMPORT_NAMESPACE, f"{scope}:{raw_id}")),
        title=conversation.get("title") if isinstance(conversation.get("title"), str) else None,
        created_at=read_timestamp(conversation.get("create_time")),
        messages=messages,
    )


def _chatgpt_message(node: dict[str, Any], where: str, scope: str) -> ImportedMessage | None:
    message = node.get("message")
    if not isinstance(message, dict):
        return None
    role = (message.get("author") or {}).get("role")
    parts = (message.get("content") or {}).get("parts") or []
    text = "\n".join(p for p in parts if isinstance(p, str)).strip()
    if role not in ("user", "assistant") or not text:
        return None  # system prompts, tool calls and images are not conversation text
    check_text(text)
    raw_id = message.get("id") or node.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise UnreadableImport(f"{where}: a message has no id")
    message_id = str(uuid.uuid5(IMPORT_NAMESPACE, f"{scope}:{raw_id}"))
    return ImportedMessage(message_id, role, text, read_timestamp(message.get("create_time")))


def read_sessions(stream: IO[bytes], scope: str = "") -> Iterator[ImportedSession]:
    """Sessions from a file, whichever format, read incrementally.

    A ChatGPT export is a JSON array of conversations: read one at a time. A
    Threadline export is one object: read as a whole (one session's size).
    """
    try:
        head = stream.read(1)
        while head in (b" ", b"\n", b"\r", b"\t", b"\xef", b"\xbb", b"\xbf"):
            head = stream.read(1)
        if head == b"[":
            yield from _chatgpt_stream(stream, scope)
        elif head == b"{":
            document = next(ijson.items(_prepend(head, stream), "", use_float=True))
            yield threadline_session(document)
        else:
            raise UnreadableImport(
                "not JSON: expected a Threadline export object or a ChatGPT array"
            )
    except ijson.JSONError as exc:
        raise UnreadableImport(f"not valid JSON: {exc}") from exc


def _chatgpt_stream(stream: IO[bytes], scope: str) -> Iterator[ImportedSession]:
    conversations = ijson.items(_prepend(b"[", stream), "item", use_float=True)
    for index, conversation in enumerate(conversations):
        yield chatgpt_session(conversation, index, scope)


class _prepend:
    """A file whose first bytes were already read."""

    def __init__(self, first: bytes, rest: IO[bytes]) -> None:
        self.first, self.rest = first, rest

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson probes with read(0) to learn bytes from str
        if self.first:
            data, self.first = self.first, b""
            return data + (self.rest.read(size - len(data)) if size > len(data) else b"")
        return self.rest.read(size)


async def import_sessions(
    db: Database,
    owner: Owner,
    sessions: Iterable[ImportedSession],
    *,
    anon_ttl: timedelta,
    extending: Callable[[str], Awaitable[None]] | None = None,
) -> ImportReport:
    """Write every session in one transaction: all of it, or (on any error) nothing.

    Rows go in with Core statements, so memory stays bounded however large the
    file: nothing accumulates in the ORM's identity map. Messages are booked on
    their session as the journal books appended ones (`grow_session`).
    `extending(id)` runs before an existing session of the owner's is extended
    (the thread layer takes the thread's lock there; raising rolls the whole
    import back). New sessions need no lock: nobody else knows them yet.
    """
    report = ImportReport()
    async with db.sessions.begin() as s:
        for session in sessions:
            await _open_session(s, owner, session, report, anon_ttl, extending)
            for start in range(0, len(session.messages), BATCH):
                batch = session.messages[start : start + BATCH]
                await _add_messages(s, session.id, batch, report, anon_ttl)
    return report


async def _open_session(
    s: AsyncSession,
    owner: Owner,
    imported: ImportedSession,
    report: ImportReport,
    anon_ttl: timedelta,
    extending: Callable[[str], Awaitable[None]] | None,
) -> None:
    """Create the session, or lock it for extending when it is the owner's."""
    row = (
        await s.execute(
            select(ChatSession.user_id, ChatSession.anon_token_hash)
            .where(ChatSession.id == imported.id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        await s.execute(
            insert(ChatSession).values(
                id=imported.id,
                user_id=owner.user_id,
                anon_token_hash=None if owner.user_id else owner.anon_token_hash,
                title=clean_title(imported.title),
                memory_enabled=owner.user_id is not None,
                created_at=imported.created_at or func.now(),
                expires_at=(func.now() + anon_ttl) if owner.user_id is None else None,
            )
        )
        report.sessions_created += 1
    elif owner.owns_row(row.user_id, row.anon_token_hash):
        if extending is not None:
            await extending(imported.id)
        report.sessions_extended += 1
    else:
        raise SessionNotFound(f"session {imported.id} belongs to someone else")
    report.session_ids.append(imported.id)


async def _add_messages(
    s: AsyncSession,
    session_id: str,
    batch: list[ImportedMessage],
    report: ImportReport,
    anon_ttl: timedelta,
) -> None:
    """Add the batch's messages that are not stored yet, after the session's last."""
    ids = [m.id for m in batch]
    found = await s.execute(
        select(ChatMessage.id, ChatMessage.session_id).where(ChatMessage.id.in_(ids))
    )
    existing: dict[str, str] = {row[0]: row[1] for row in found.all()}
    if any(owner_id != session_id for owner_id in existing.values()):
        raise MessageIdConflict("a message id of this file is used in another session")
    new = list({m.id: m for m in batch if m.id not in existing}.values())
    report.messages_skipped += len(batch) - len(new)
    if not new:
        return  # nothing was said: the session's activity and expiry stay as they were
    seqs = await grow_session(s, session_id, len(new), anon_ttl=anon_ttl)
    rows = [_row(session_id, seq, m) for seq, m in zip(seqs, new, strict=True)]
    await s.execute(insert(ChatMessage), rows)
    report.messages_added += len(new)


def _row(session_id: str, seq: int, message: ImportedMessage) -> dict[str, Any]:
    extra = message.extra
    return {
        "id": message.id,
        "session_id": session_id,
        "seq": seq,
        "role": message.role,
        "content": message.content,
        "created_at": message.created_at or datetime.now(UTC),
        "tools_used": extra.get("tools_used") or [],
        "processing_time_ms": extra.get("processing_time_ms"),
        "token_count": extra.get("token_count"),
        "has_error": bool(extra.get("has_error", False)),
        "error_message": extra.get("error_message"),
        "metadata_": {"imported": True},
    }
