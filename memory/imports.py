"""Importing conversations: Threadline's own export and ChatGPT's
`conversations.json`, written in one transaction, and idempotent: message ids
are keys, so importing a file twice adds nothing.

Reading is bounded whatever the file: the parser's events are counted, so a file
nested deeper than the limit is refused before anything is built from it; a
ChatGPT export is read one conversation at a time, keeping only the fields an
import uses; a Threadline export's messages are checked one at a time and
handed on in parts. Reading is plain blocking code, for a worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import IO, Any, TypeVar

import ijson
import psycopg.errors
import sqlalchemy.exc
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.errors import MessageIdConflict
from memory.journal import grow_session
from memory.models import ChatMessage, ChatSession
from memory.session_format import (
    IMPORT_NAMESPACE,
    ImportedMessage,
    ImportedSession,
    ImportLimits,
    UnreadableImport,
    imported_text,
    read_timestamp,
    session_title,
    threadline_header,
    threadline_message,
)
from memory.sessions import Owner, clean_title

BATCH = 500
ID_ATTEMPTS = 4  # derivations tried when a derived id is someone else's too
T = TypeVar("T")

# Which fields of a value to build: True keeps all of it, a mapping names the
# fields kept ("*" stands for any other), and what is not named is skipped
# unbuilt. The items of a list are read as the list is.
Keep = bool | dict[str, Any]
CHATGPT_FIELDS: Keep = {
    **dict.fromkeys(("id", "conversation_id", "title", "create_time", "current_node"), True),
    "mapping": {
        "*": {
            "id": True,
            "parent": True,
            "message": {
                "id": True,
                "author": {"role": True},
                "create_time": True,
                "content": {"parts": True},
            },
        }
    },
}
EXPORT_FIELDS: dict[str, Keep] = {
    "format": True,
    "version": True,
    "session": dict.fromkeys(("id", "title", "created_at"), True),
}
EXPORT_MESSAGE_FIELDS: Keep = dict.fromkeys(
    (
        "id",
        "role",
        "content",
        "created_at",
        "tools_used",
        "processing_time_ms",
        "token_count",
        "has_error",
        "error_message",
    ),
    True,
)
_OPEN = frozenset(("start_map", "start_array"))
_CLOSE = frozenset(("end_map", "end_array"))
Events = Iterator[tuple[str, Any]]


def import_scope(owner: Owner) -> str:
    """The scope in which an owner's imported ids are derived."""
    return f"user:{owner.user_id}" if owner.user_id else f"anon:{owner.anon_token_hash}"


def derived_id(scope: str, raw: object) -> str:
    """An id of the importer's own made from one a file gives: the same file gives
    the same ids again, and two owners importing one file never collide."""
    try:
        return str(uuid.uuid5(IMPORT_NAMESPACE, f"{scope}:{raw}"))
    except UnicodeEncodeError:
        raise UnreadableImport("an id in the file is not valid Unicode") from None


@dataclass
class ImportReport:
    sessions_created: int = 0
    sessions_extended: int = 0
    messages_added: int = 0
    messages_skipped: int = 0
    session_ids: list[str] = field(default_factory=list)


# Reading


def read_sessions(
    stream: IO[bytes], scope: str = "", limits: ImportLimits | None = None
) -> Iterator[ImportedSession]:
    """Sessions from a file, whichever format, read incrementally.

    A long Threadline session comes in consecutive parts with the same id, each of
    at most BATCH messages (`import_sessions` joins them).
    """
    limits = limits or ImportLimits()
    try:
        first = stream.read(1)
        while first in (b" ", b"\n", b"\r", b"\t", b"\xef", b"\xbb", b"\xbf"):
            first = stream.read(1)
        events = _bounded_events(_prepend(first, stream), limits.max_depth)
        if first == b"[":
            yield from _chatgpt_sessions(events, scope, limits)
        elif first == b"{":
            yield from _threadline_parts(events, limits)
        else:
            raise UnreadableImport(
                "not JSON: expected a Threadline export object or a ChatGPT array"
            )
        for _ in events:  # only whitespace may follow; the parser refuses anything else
            raise UnreadableImport("not valid JSON: more than one value")
    except ijson.JSONError as exc:
        raise UnreadableImport(f"not valid JSON: {exc}") from exc
    except UnicodeDecodeError:
        raise UnreadableImport("not valid JSON: the text is not UTF-8") from None


def _bounded_events(stream: _prepend, max_depth: int) -> Events:
    """The parser's events, refused as soon as the nesting passes `max_depth` (a
    parser's cost can grow with the square of the depth)."""
    depth = 0
    for event, value in ijson.basic_parse(stream, use_float=True):
        if event in _OPEN:
            depth += 1
            if depth > max_depth:
                raise UnreadableImport(f"the JSON is nested deeper than {max_depth} levels")
        elif event in _CLOSE:
            depth -= 1
        yield event, value


def _build(events: Events, event: str, value: Any, keep: Keep = True) -> Any:
    """The value that starts with `event`, built from the events up to its end,
    leaving out what `keep` does not name."""
    if event not in _OPEN:
        return value
    if keep is False:
        _skip(events, event)
        return None
    root: Any = {} if event == "start_map" else []
    stack: list[tuple[Any, Keep]] = [(root, keep)]
    key = ""
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event in _CLOSE:
            stack.pop()
            if not stack:
                return root
            continue
        container, spec = stack[-1]
        is_map = type(container) is dict
        if is_map and isinstance(spec, dict):
            child: Keep = spec[key] if key in spec else spec.get("*", False)
        else:
            child = spec
        if child is False:
            _skip(events, event)
            continue
        item = {} if event == "start_map" else [] if event == "start_array" else value
        if is_map:
            container[key] = item
        else:
            container.append(item)
        if event in _OPEN:
            stack.append((item, child))
    raise UnreadableImport("not valid JSON: the file ends inside a value")


def _skip(events: Events, event: str) -> None:
    """Read past the value that starts with `event` without building it."""
    depth = 1 if event in _OPEN else 0
    while depth:
        event, _ = next(events)
        depth += (event in _OPEN) - (event in _CLOSE)


def _chatgpt_sessions(
    events: Events, scope: str, limits: ImportLimits
) -> Iterator[ImportedSession]:
    next(events)  # the array's start
    # Each turn reads one conversation's first event; building it reads the rest.
    for index, (event, value) in enumerate(events):
        if event == "end_array":
            return
        if index == limits.max_sessions:
            raise UnreadableImport(
                f"more than {limits.max_sessions} conversations in one file; import it in parts"
            )
        conversation = _build(events, event, value, CHATGPT_FIELDS)
        yield chatgpt_session(conversation, index, scope, limits.max_message_chars)


def _threadline_parts(events: Events, limits: ImportLimits) -> Iterator[ImportedSession]:
    """The export's session in parts, each message checked as it is read. Messages
    wait until the fields that describe the session (our exports write them
    first) are read and right."""
    next(events)  # the object's start
    fields: dict[str, Any] = {}
    header: ImportedSession | None = None
    pending: list[ImportedMessage] = []
    parts = 0
    for event, key in events:
        if event == "end_map":
            break
        event, value = next(events)
        if key != "messages":
            fields[key] = _build(events, event, value, EXPORT_FIELDS.get(key, False))
            continue
        if event != "start_array":
            raise UnreadableImport("`messages` must be a list")
        fields[key] = True
        for index, raw in enumerate(_array(events, EXPORT_MESSAGE_FIELDS)):
            where = f"message {index}"
            pending.append(threadline_message(raw, where, limits.max_message_chars))
            if header is None and {"format", "version", "session"} <= fields.keys():
                header = threadline_header(fields)
            if header is not None and len(pending) == BATCH:
                yield replace(header, messages=pending)
                pending, parts = [], parts + 1
    header = header or threadline_header(fields)
    if pending or not parts:
        yield replace(header, messages=pending)


def _array(events: Events, keep: Keep) -> Iterator[Any]:
    """The items of the array whose start was just read, built one at a time."""
    for event, value in events:
        if event == "end_array":
            return
        yield _build(events, event, value, keep)


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


def chatgpt_session(
    conversation: Any, index: int, scope: str, max_chars: int = ImportLimits.max_message_chars
) -> ImportedSession:
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
            raise UnreadableImport(f"{where}: node {node_id[:40]!r} is not an object")
        path.append(node)
        node_id = node.get("parent")
    found = (_chatgpt_message(n, where, scope, max_chars) for n in reversed(path))
    raw_id = conversation.get("id") or conversation.get("conversation_id") or index
    return ImportedSession(
        id=derived_id(scope, raw_id),
        title=session_title(conversation.get("title"), f"{where}: title"),
        created_at=read_timestamp(conversation.get("create_time"), f"{where}: create_time"),
        messages=[m for m in found if m],
    )


def _chatgpt_message(
    node: dict[str, Any], where: str, scope: str, max_chars: int
) -> ImportedMessage | None:
    message = node.get("message")
    if message is None:
        return None
    author = message.get("author") if isinstance(message, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(author, dict) or not isinstance(content, dict):
        raise UnreadableImport(f"{where}: a message needs an `author` and a `content` object")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise UnreadableImport(f"{where}: a message's `content.parts` must be a list")
    text = "\n".join(p for p in parts if isinstance(p, str)).strip()
    if author.get("role") not in ("user", "assistant") or not text:
        return None  # system prompts, tool calls and images are not conversation text
    text = imported_text(text, f"{where}: a message", max_chars)
    raw_id = message.get("id") or node.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise UnreadableImport(f"{where}: a message has no id")
    created_at = read_timestamp(message.get("create_time"), f"{where}: create_time")
    return ImportedMessage(derived_id(scope, raw_id), author["role"], text, created_at)


# Writing


async def import_sessions(
    db: Database,
    owner: Owner,
    sessions: Iterable[ImportedSession] | AsyncIterable[ImportedSession],
    *,
    anon_ttl: timedelta,
    extending: Callable[[str], Awaitable[None]] | None = None,
) -> ImportReport:
    """Write every session in one transaction: all of it, or (on any error) nothing.

    Rows go in with Core statements, so memory stays bounded however large the
    file: nothing accumulates in the ORM's identity map. Messages are booked on
    their session as the journal books appended ones (`grow_session`).
    Consecutive parts with the same id are one session. `extending(id)` runs
    before an existing session of the owner's is extended (the thread layer
    takes the thread's lock there; raising rolls the whole import back). New
    sessions need no lock: nobody else knows them yet.

    Ids are never shared with another owner: a session or message id that is
    someone else's is replaced by one derived from it in the owner's scope, so
    the file imports as new data and tells nothing of the other's.
    """
    report = ImportReport()
    try:
        async with db.sessions.begin() as s:
            writer = _Writer(s, owner, import_scope(owner), report, anon_ttl, extending)
            current: tuple[str, str] | None = None  # the file's session id, the one written
            async for part in _each(sessions):
                if current is None or current[0] != part.id:
                    current = (part.id, await writer.open_session(part))
                for start in range(0, len(part.messages), BATCH):
                    await writer.add_messages(current[1], part.messages[start : start + BATCH])
    except sqlalchemy.exc.DBAPIError as exc:
        refusal = _refusal(exc)
        if refusal is None:
            raise
        raise refusal from exc
    return report


def _refusal(exc: sqlalchemy.exc.DBAPIError) -> UnreadableImport | None:
    """What the database refused of the file's data is the file's fault (422), not
    an outage: a text past an index's limit, a value out of a column's range."""
    if isinstance(exc.orig, psycopg.errors.ProgramLimitExceeded):
        return UnreadableImport("a message is too large for the search index; shorten it")
    if isinstance(exc.orig, psycopg.errors.DataError):
        detail = exc.orig.diag.message_primary or "a value is out of range"
        return UnreadableImport(f"the file holds a value that cannot be stored: {detail[:200]}")
    return None


async def _each(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


@dataclass
class _Writer:
    """One import's writes, in the caller's transaction."""

    s: AsyncSession
    owner: Owner
    scope: str  # where ids that are someone else's are derived
    report: ImportReport
    anon_ttl: timedelta
    extending: Callable[[str], Awaitable[None]] | None

    async def open_session(self, imported: ImportedSession) -> str:
        """The id the session is written under: the file's own when it is new or
        the owner's (locked for extending), else one derived from it. Another
        owner's row is neither locked nor told apart from a free id."""
        session_id = imported.id
        for _ in range(ID_ATTEMPTS):
            mine = await self.s.scalar(
                self.owner.filter(
                    select(ChatSession.id).where(ChatSession.id == session_id)
                ).with_for_update()
            )
            if mine is not None:
                if self.extending is not None:
                    await self.extending(session_id)
                self.report.sessions_extended += 1
                break
            if await self._create_session(session_id, imported):
                self.report.sessions_created += 1
                break
            session_id = derived_id(self.scope, session_id)
        else:
            raise UnreadableImport(f"no free id for session {imported.id}")
        self.report.session_ids.append(session_id)
        return session_id

    async def _create_session(self, session_id: str, imported: ImportedSession) -> bool:
        """Whether the session was created (False: the id is taken)."""
        owner = self.owner
        created = await self.s.scalar(
            insert(ChatSession)
            .values(
                id=session_id,
                user_id=owner.user_id,
                anon_token_hash=None if owner.user_id else owner.anon_token_hash,
                title=clean_title(imported.title),
                memory_enabled=owner.user_id is not None,
                created_at=imported.created_at or func.now(),
                expires_at=(func.now() + self.anon_ttl) if owner.user_id is None else None,
            )
            .on_conflict_do_nothing()
            .returning(ChatSession.id)
        )
        return created is not None

    async def add_messages(self, session_id: str, batch: list[ImportedMessage]) -> None:
        """Add the batch's messages that are not stored yet, after the session's last."""
        new = await self._unstored(session_id, batch)
        self.report.messages_skipped += len(batch) - len(new)
        if not new:
            return  # nothing was said: the session's activity and expiry stay as they were
        seqs = await grow_session(self.s, session_id, len(new), anon_ttl=self.anon_ttl)
        rows = [_row(session_id, seq, m) for seq, m in zip(seqs, new, strict=True)]
        await self.s.execute(insert(ChatMessage), rows)
        self.report.messages_added += len(new)

    async def _unstored(
        self, session_id: str, batch: list[ImportedMessage]
    ) -> list[ImportedMessage]:
        """The batch's messages the session does not hold yet, each id that is
        someone else's replaced by one derived from it (an id in another session
        of the owner's own is a conflict, as in the journal)."""
        new: dict[str, ImportedMessage] = {}
        pending = batch
        for _ in range(ID_ATTEMPTS):
            found = await self.s.execute(
                select(
                    ChatMessage.id,
                    ChatMessage.session_id,
                    ChatSession.user_id,
                    ChatSession.anon_token_hash,
                )
                .join(ChatSession, ChatSession.id == ChatMessage.session_id)
                .where(ChatMessage.id.in_([m.id for m in pending]))
            )
            stored = {row.id: row for row in found}
            retry = []
            for message in pending:
                row = stored.get(message.id)
                if row is None:
                    new.setdefault(message.id, message)
                elif row.session_id == session_id:
                    continue  # imported before
                elif self.owner.owns_row(row.user_id, row.anon_token_hash):
                    raise MessageIdConflict("a message id of this file is used in another session")
                else:
                    retry.append(replace(message, id=derived_id(self.scope, message.id)))
            if not retry:
                return list(new.values())
            pending = retry
        raise UnreadableImport("no free id for a message of this file")


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
