"""The message journal: every message of every session, once, in order.

This is the one source of truth. The UI pages it; the graph's window is a cache
of its tail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from psycopg import IntegrityError
from psycopg.types.json import Jsonb
from sqlalchemy import (
    Boolean,
    Integer,
    Interval,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database, fetch
from memory.errors import InvalidInput, MessageIdConflict, SessionNotFound
from memory.models import ChatMessage, ChatSession

MESSAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
ROLES = ("user", "assistant", "tool")


@dataclass
class NewMessage:
    """A message to journal; `id` is the caller's, so a retry is a no-op."""

    id: str
    role: str
    content: str
    tools_used: list[Any] = field(default_factory=list)
    processing_time_ms: int | None = None
    token_count: int | None = None
    has_error: bool = False
    error_message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def check_text(text: str, *, what: str = "content") -> None:
    """Refuse text PostgreSQL cannot store: a NUL byte, or a lone surrogate (JSON's
    "\\ud800" decodes to one; it has no UTF-8 form)."""
    if "\x00" in text:
        raise InvalidInput(f"{what} contains a NUL byte")
    if not text.isascii() and not is_utf8(text):
        raise InvalidInput(f"{what} contains a lone surrogate (not valid Unicode)")


METADATA_MAX_BYTES = 16_384


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A client's metadata (a thread's, a run's), if PostgreSQL can store it (no
    NUL byte, no lone surrogate, in a key or a value) and it is small enough
    (16 KiB as JSON); else InvalidInput."""
    try:
        text = json.dumps(metadata, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput("metadata must be a JSON object, not nested too deeply") from exc
    if len(text.encode("utf-8", "surrogatepass")) > METADATA_MAX_BYTES:
        raise InvalidInput(f"metadata is over {METADATA_MAX_BYTES} bytes as JSON")
    left: list[Any] = [metadata]
    while left:
        value = left.pop()
        if isinstance(value, dict):
            left += [*value, *value.values()]
        elif isinstance(value, list):
            left += value
        elif isinstance(value, str):
            check_text(value, what="metadata")
    return metadata


def is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def like_pattern(text: str) -> str:
    """`%text%` for ILIKE, with the pattern characters in `text` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def check_message(message: NewMessage) -> None:
    if not MESSAGE_ID.match(message.id):
        raise InvalidInput("message id must be 1-128 letters, digits or ._:-")
    if message.role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    check_text(message.content)
    if message.error_message:
        check_text(message.error_message, what="error_message")


SESSIONS = cast(Table, ChatSession.__table__)
MESSAGES = cast(Table, ChatMessage.__table__)
UNIQUE_VIOLATION = "23505"

# The one rule every writer follows (append, import, merge), so the counters,
# the activity time and the expiry never disagree between them: book `count`
# new messages on a session; an anonymous session slides to now + `anon_ttl`,
# the others keep their expiry. Returns the session's new last seq. The UPDATE
# locks the row until its transaction ends, so concurrent writers get distinct seqs.
_GROW = (
    update(SESSIONS)
    .where(SESSIONS.c.id == bindparam("p_session_id"))
    .values(
        last_seq=SESSIONS.c.last_seq + bindparam("p_count", type_=Integer),
        message_count=SESSIONS.c.message_count + bindparam("p_count", type_=Integer),
        last_activity_at=func.now(),
        updated_at=func.now(),
        expires_at=case(
            (SESSIONS.c.user_id.is_(None), func.now() + bindparam("p_anon_ttl", type_=Interval)),
            else_=SESSIONS.c.expires_at,
        ),
        # A session nobody named takes `p_title` with its first message (a turn's
        # question names its session: Journal.append's `title`; NULL: no name).
        title=case(
            (
                and_(SESSIONS.c.last_seq == literal_column("0"), SESSIONS.c.title.is_(None)),
                bindparam("p_title", type_=Text),
            ),
            else_=SESSIONS.c.title,
        ),
    )
    .returning(SESSIONS.c.last_seq)
)

# Append one message in one statement (so in one round trip, in autocommit):
# the session grows by one (`_GROW`) and the row takes the seq it hands out.
# A session that is not there books nothing and inserts nothing. An id already
# stored fails the INSERT on the primary key, which undoes the whole statement,
# the UPDATE with it: no seq is spent, no count moves.
_GROWN = _GROW.cte("grown")
_APPEND = (
    insert(MESSAGES)
    .from_select(
        [
            "id",
            "session_id",
            "seq",
            "role",
            "content",
            "tools_used",
            "processing_time_ms",
            "token_count",
            "has_error",
            "error_message",
            "metadata",
        ],
        select(
            bindparam("p_id", type_=Text),
            bindparam("p_session_id", type_=Text),
            _GROWN.c.last_seq,
            bindparam("p_role", type_=Text),
            bindparam("p_content", type_=Text),
            bindparam("p_tools_used", type_=JSONB),
            bindparam("p_processing_time_ms", type_=Integer),
            bindparam("p_token_count", type_=Integer),
            bindparam("p_has_error", type_=Boolean),
            bindparam("p_error_message", type_=Text),
            bindparam("p_metadata", type_=JSONB),
        ),
    )
    .returning(*MESSAGES.c)
)
# Every turn appends twice: run on the psycopg pool, as compiled once here.
_APPEND_SQL = str(_APPEND.compile(dialect=psycopg_dialect.dialect()))  # type: ignore[no-untyped-call]
# A stretch of a session's messages: the window's gap to its summary (graph/window.py).
_BETWEEN_SQL = """
SELECT * FROM chat_messages
 WHERE session_id = %(session_id)s AND seq BETWEEN %(first)s AND %(last)s ORDER BY seq
"""
# Those of some message ids journaled, in any session: no row at all when the
# session is not there, else a row per message found (one of NULLs for none).
_FIND_SQL = """
SELECT s.id AS found_session, m.*
  FROM chat_sessions s LEFT JOIN chat_messages m ON m.id = ANY(%(ids)s)
 WHERE s.id = %(session_id)s
"""

# A session's newest messages as LangChain message dicts (a user's message is
# `human`, any other `ai`, with its seq in `response_metadata`), as JSON text.
_TAIL_JSON_SQL = """
SELECT coalesce(json_agg(m.message ORDER BY m.seq), '[]')::text AS messages FROM (
    SELECT seq, CASE WHEN role = 'user' THEN json_build_object(
        'type', 'human', 'id', id, 'content', content, 'name', NULL,
        'additional_kwargs', '{}'::json, 'response_metadata', '{}'::json)
    ELSE json_build_object(
        'type', 'ai', 'id', id, 'content', content, 'name', NULL,
        'additional_kwargs', '{}'::json, 'response_metadata', json_build_object('seq', seq),
        'tool_calls', '[]'::json, 'invalid_tool_calls', '[]'::json)
    END AS message
      FROM chat_messages WHERE session_id = %(session_id)s ORDER BY seq DESC LIMIT %(n)s
) m
"""


async def grow_session(
    s: AsyncSession, session_id: str, count: int, *, anon_ttl: timedelta
) -> range:
    """Book `count` new messages on a session in the caller's transaction; returns
    the seqs they take (SessionNotFound when there is no such session).

    `_GROW` is the rule; the row stays locked until the caller commits.
    """
    last_seq = await s.scalar(
        _GROW,
        {"p_session_id": session_id, "p_count": count, "p_anon_ttl": anon_ttl, "p_title": None},
    )
    if last_seq is None:
        raise SessionNotFound("session not found")
    return range(last_seq - count + 1, last_seq + 1)


def message_from_row(row: Any) -> ChatMessage:
    """A ChatMessage from a row of every `chat_messages` column (a SQLAlchemy
    row, or a psycopg dict row)."""
    values = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    values["metadata_"] = values.pop("metadata")
    return ChatMessage(**values)


class Journal:
    """Append and read a session's messages."""

    def __init__(self, db: Database, *, anon_ttl: timedelta) -> None:
        self.db = db
        self.anon_ttl = anon_ttl

    async def append(
        self, session_id: str, message: NewMessage, *, title: str | None = None
    ) -> tuple[ChatMessage, bool]:
        """Journal `message` once; returns the stored row and whether it is new.

        One statement, its own transaction (`_APPEND`): concurrent writers get
        distinct, increasing seqs; an id already stored leaves everything as it
        was and the stored row is returned (MessageIdConflict if it belongs to
        another session). With `title` (a clean one: memory.sessions.clean_title),
        a session nobody named takes it when this is its first message.
        """
        check_message(message)
        try:
            return await self._insert(session_id, message, title), True
        except IntegrityError as exc:
            if exc.sqlstate != UNIQUE_VIOLATION:
                raise SessionNotFound("session not found") from exc  # deleted meanwhile
        existing = await self.get(message.id)
        if existing is None or existing.session_id != session_id:
            raise MessageIdConflict("message id already used in another session")
        return existing, False

    async def _insert(self, session_id: str, message: NewMessage, title: str | None) -> ChatMessage:
        values = {  # p_ names: a Core UPDATE would take a column's name for a SET
            "p_session_id": session_id,
            "p_count": 1,
            "p_anon_ttl": self.anon_ttl,
            "p_title": title,
            "p_id": message.id,
            "p_role": message.role,
            "p_content": message.content,
            "p_tools_used": Jsonb(message.tools_used),
            "p_processing_time_ms": message.processing_time_ms,
            "p_token_count": message.token_count,
            "p_has_error": message.has_error,
            "p_error_message": message.error_message,
            "p_metadata": Jsonb(message.metadata),
        }
        rows = await fetch(self.db, _APPEND_SQL, values)
        if not rows:
            raise SessionNotFound("session not found")
        return message_from_row(rows[0])

    async def search_user_messages(
        self,
        user_id: str,
        query: str,
        *,
        exclude_session_id: str | None = None,
        limit: int = 5,
    ) -> list[dict[str, Any]]:
        """A user's messages matching `query` across their sessions with memory on
        (a memory-off session is a temporary chat: nothing later reads it).

        Full text in the language-agnostic `simple` configuration, or a substring
        (CJK has no spaces to split words at); best rank first, then newest.
        """
        check_text(query, what="query")
        tsquery = func.plainto_tsquery("simple", query)
        document = func.to_tsvector("simple", ChatMessage.content)
        found = (
            select(ChatMessage, ChatSession.title)
            .join(ChatSession, ChatSession.id == ChatMessage.session_id)
            .where(
                ChatSession.user_id == user_id,
                ChatSession.memory_enabled.is_(True),
                ChatSession.id != (exclude_session_id or ""),
                or_(document.op("@@")(tsquery), ChatMessage.content.ilike(like_pattern(query))),
            )
            .order_by(func.ts_rank(document, tsquery).desc(), ChatMessage.created_at.desc())
            .limit(limit)
        )
        async with self.db.autocommit() as s:
            rows = (await s.execute(found)).all()
        return [{**m.as_dict(), "title": title} for m, title in rows]

    async def get(self, message_id: str) -> ChatMessage | None:
        async with self.db.autocommit() as s:
            return await s.get(ChatMessage, message_id)

    async def find(self, session_id: str, message_ids: list[str]) -> dict[str, ChatMessage]:
        """Those of `message_ids` that are journaled (in any session), by id, in one
        query that also finds the session: SessionNotFound when it is not there."""
        rows = await fetch(self.db, _FIND_SQL, {"ids": message_ids, "session_id": session_id})
        if not rows:
            raise SessionNotFound("session not found")
        found = (message_from_row(row) for row in rows if row.pop("found_session") is not None)
        return {message.id: message for message in found if message.id is not None}

    async def retract(self, session_id: str, message_ids: list[str]) -> list[str]:
        """Take these messages of the session out of the journal (a regenerated
        answer, an edited question with its answer); returns the ids removed.

        One transaction. The session's seq counter moves on by one, so the next
        message does not follow the thread's window: its turn rebuilds the window
        from the journal, without them (graph/nodes.py, initialize).
        """
        async with self.db.sessions.begin() as s:
            removed = list(
                await s.scalars(
                    delete(ChatMessage)
                    .where(ChatMessage.session_id == session_id, ChatMessage.id.in_(message_ids))
                    .returning(ChatMessage.id)
                )
            )
            await s.execute(
                update(ChatSession)
                .where(ChatSession.id == session_id)
                .values(
                    last_seq=ChatSession.last_seq + 1,
                    message_count=ChatSession.message_count - len(removed),
                    updated_at=func.now(),
                )
            )
        return removed

    async def tail(self, session_id: str, n: int, *, min_seq: int = 0) -> list[ChatMessage]:
        """The last `n` messages (seq >= min_seq), oldest first."""
        async with self.db.autocommit() as s:
            rows = await s.scalars(
                select(ChatMessage)
                .where(ChatMessage.session_id == session_id, ChatMessage.seq >= min_seq)
                .order_by(ChatMessage.seq.desc())
                .limit(n)
            )
            return list(reversed(rows.all()))

    async def tail_json(self, session_id: str, n: int) -> str:
        """The last `n` messages, oldest first, as the JSON text of a list of
        LangChain message dicts (`_TAIL_JSON_SQL`): for a response that only
        passes them on, PostgreSQL writes the JSON and no row becomes an object
        here ("[]" for a session that is not there)."""
        rows = await fetch(self.db, _TAIL_JSON_SQL, {"session_id": session_id, "n": n})
        return str(rows[0]["messages"])

    async def between(self, session_id: str, first_seq: int, last_seq: int) -> list[ChatMessage]:
        """Messages with first_seq <= seq <= last_seq, oldest first."""
        bounds = {"session_id": session_id, "first": first_seq, "last": last_seq}
        return [message_from_row(row) for row in await fetch(self.db, _BETWEEN_SQL, bounds)]

    async def page(
        self,
        session_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> tuple[list[ChatMessage], bool]:
        """A page of messages, ascending by seq, and whether more lie beyond it.

        With `after_seq` the page starts right after it (replay); otherwise it is
        the newest messages before `before_seq` (scrolling up).
        """
        query = select(ChatMessage).where(ChatMessage.session_id == session_id)
        if before_seq is not None:
            query = query.where(ChatMessage.seq < before_seq)
        if after_seq is not None:
            query = query.where(ChatMessage.seq > after_seq)
        ascending = after_seq is not None
        order = ChatMessage.seq.asc() if ascending else ChatMessage.seq.desc()
        async with self.db.autocommit() as s:
            rows = list((await s.scalars(query.order_by(order).limit(limit + 1))).all())
        has_more = len(rows) > limit
        rows = rows[:limit]
        return (rows if ascending else list(reversed(rows))), has_more
