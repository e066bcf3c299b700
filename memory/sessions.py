"""Chat sessions (threads): who owns them, their titles, paging, deletion."""

from __future__ import annotations

import base64
import builtins
import json
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Select,
    Table,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from memory.checkpoints import delete_thread
from memory.db import Database, fetch
from memory.errors import InvalidInput, SessionNotFound
from memory.journal import check_metadata, check_text, like_pattern
from memory.models import ChatMessage, ChatSession, Memory, detached

TITLE_MAX = 200
QUESTION_TITLE_CHARS = 80  # of the first question, when it names its session
COPY_PAGE = 1000  # messages a copy reads and writes at a time
MESSAGES = typing.cast(Table, ChatMessage.__table__)
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Owner:
    """Who asks: a logged-in user, an anonymous owner known by a token hash, or
    both (a browser that chatted anonymously and then logged in)."""

    user_id: str | None = None
    anon_token_hash: str | None = None

    def __post_init__(self) -> None:
        if self.user_id is None and self.anon_token_hash is None:
            raise ValueError("an owner needs a user id or an anonymous token hash")

    def owns(self, session: ChatSession) -> bool:
        return self.owns_row(session.user_id, session.anon_token_hash)

    def owns_row(self, user_id: str | None, anon_token_hash: str | None) -> bool:
        """Whether a session with these owner columns is this owner's: the one
        ownership check, for callers that read the columns without the row."""
        if self.user_id is not None and user_id == self.user_id:
            return True
        # Once a user owns a session, the anonymous token that started it reaches it no more.
        return (
            self.anon_token_hash is not None
            and user_id is None
            and anon_token_hash == self.anon_token_hash
        )

    def filter(self, query: SelectT) -> SelectT:
        """Narrow a query of sessions to this owner's."""
        mine = []
        if self.user_id is not None:
            mine.append(ChatSession.user_id == self.user_id)
        if self.anon_token_hash is not None:
            mine.append(
                and_(
                    ChatSession.user_id.is_(None),
                    ChatSession.anon_token_hash == self.anon_token_hash,
                )
            )
        return query.where(or_(*mine))


def check_session_id(session_id: str) -> str:
    """Session ids are UUIDs; anything else cannot exist."""
    try:
        return str(uuid.UUID(session_id))
    except (ValueError, AttributeError, TypeError):
        raise SessionNotFound("session not found") from None


def clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    check_text(title, what="title")
    title = " ".join(title.split())[:TITLE_MAX]
    return title or None


def question_title(question: str) -> str | None:
    """The title a session nobody named takes from its first question."""
    return clean_title(question[:QUESTION_TITLE_CHARS])


def _encode_cursor(session: ChatSession) -> str:
    raw = json.dumps([session.last_activity_at.isoformat(), session.id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _of(
    query: SelectT,
    archived: bool | None,
    q: str | None,
    title: str | None,
    tags: dict[str, Any] | None,
) -> SelectT:
    """`query` narrowed to live sessions (not expired) of the filters given."""
    query = query.where(or_(ChatSession.expires_at.is_(None), ChatSession.expires_at > func.now()))
    if archived is not None:
        query = query.where(ChatSession.archived.is_(archived))
    if q:
        query = query.where(_matches(q))
    if title is not None:
        query = query.where(ChatSession.title == title)
    if tags:
        query = query.where(ChatSession.metadata_["tags"].contains(check_metadata(tags)))
    return query


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        stamp, session_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(stamp), str(uuid.UUID(session_id))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput("cursor is not valid") from exc


def has_expired(session: ChatSession) -> bool:
    """An expired session is not found (the cleanup removes it soon)."""
    return session.expires_at is not None and session.expires_at <= datetime.now(UTC)


def session_from_row(row: dict[str, Any]) -> ChatSession:
    """A ChatSession from a psycopg row of every `chat_sessions` column, as if
    loaded by the ORM (detached, not new)."""
    values = dict(row)
    values["metadata_"] = values.pop("metadata")
    return detached(ChatSession, values)


class SessionStore:
    """Create, find, list, change and delete sessions, each call one unit of work."""

    def __init__(
        self, db: Database, *, anon_ttl: timedelta, retention: timedelta | None = None
    ) -> None:
        self.db = db
        self.anon_ttl = anon_ttl
        self.retention = retention

    async def create(
        self,
        owner: Owner,
        *,
        title: str | None = None,
        memory: bool = True,
        model: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> ChatSession:
        """A new, empty session; anonymous ones expire after the TTL of inactivity.
        `tags`: a client's own keys and values for it (`ChatSession.tags`)."""
        ttl = self.anon_ttl if owner.user_id is None else self.retention
        metadata: dict[str, Any] = {"model": model} if model else {}
        if tags:
            metadata["tags"] = check_metadata(tags)
        async with self.db.sessions.begin() as s:
            session = ChatSession(
                id=str(uuid.uuid4()),
                user_id=owner.user_id,
                anon_token_hash=None if owner.user_id else owner.anon_token_hash,
                title=clean_title(title),
                memory_enabled=memory and owner.user_id is not None,
                expires_at=(func.now() + ttl) if ttl is not None else None,
                metadata_=metadata,
            )
            s.add(session)
            await s.flush()
            await s.refresh(session)
        return session

    async def get(
        self, session_id: str, owner: Owner | None = None, *, include_expired: bool = False
    ) -> ChatSession:
        """The session, if it exists and `owner` (when given) owns it; else SessionNotFound.

        An expired session (cleanup removes it soon) is not found, unless asked for.
        """
        session_id = check_session_id(session_id)
        rows = await fetch(self.db, "SELECT * FROM chat_sessions WHERE id = %s", (session_id,))
        session = session_from_row(rows[0]) if rows else None
        if session is None or (owner is not None and not owner.owns(session)):
            raise SessionNotFound("session not found")
        if has_expired(session) and not include_expired:
            raise SessionNotFound("session not found")
        return session

    async def list(
        self,
        owner: Owner,
        *,
        archived: bool | None = False,
        q: str | None = None,
        title: str | None = None,
        tags: dict[str, Any] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[ChatSession], str | None]:
        """The owner's sessions, newest activity first, and the cursor of the next
        page; of a `title`, and holding `tags` (each key with its value), if given."""
        query = _of(owner.filter(select(ChatSession)), archived, q, title, tags)
        if cursor:
            stamp, last_id = _decode_cursor(cursor)
            query = query.where(
                or_(
                    ChatSession.last_activity_at < stamp,
                    and_(ChatSession.last_activity_at == stamp, ChatSession.id < last_id),
                )
            )
        query = query.order_by(ChatSession.last_activity_at.desc(), ChatSession.id.desc())
        async with self.db.autocommit() as s:
            rows = list((await s.scalars(query.limit(limit + 1))).all())
        next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit], next_cursor

    async def count(
        self,
        owner: Owner,
        *,
        archived: bool | None = False,
        q: str | None = None,
        title: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> int:
        """How many sessions `list` would give, over all its pages."""
        query = _of(
            owner.filter(select(func.count()).select_from(ChatSession)), archived, q, title, tags
        )
        async with self.db.autocommit() as s:
            return int((await s.execute(query)).scalar_one())

    async def update(
        self,
        session_id: str,
        owner: Owner | None,
        *,
        title: str | None = None,
        archived: bool | None = None,
        model: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> ChatSession:
        """Rename, (un)archive, choose the chat's model ("": the default), or add
        to its `tags` (a key given again takes the new value)."""
        session = await self.get(session_id, owner)
        values: dict[str, Any] = {"updated_at": func.now()}
        metadata: Any = ChatSession.metadata_
        if tags:
            merged = func.coalesce(metadata["tags"], func.jsonb_build_object()).op("||")(
                cast(check_metadata(tags), JSONB)
            )
            metadata = metadata.op("||")(func.jsonb_build_object("tags", merged))
            values["metadata_"] = metadata
        if title is not None:
            values["title"] = clean_title(title)
        if archived is not None:
            values["archived"] = archived
        if model is not None:
            values["metadata_"] = (
                metadata.op("||")(func.jsonb_build_object("model", model))
                if model
                else metadata.op("-")("model")
            )
        async with self.db.sessions.begin() as s:
            await s.execute(update(ChatSession).where(ChatSession.id == session.id).values(values))
        return await self.get(session.id, owner)

    async def claim(self, session_id: str, anon_token_hash: str, user_id: str) -> ChatSession:
        """An anonymous owner's session becomes the user's: no expiry (unless a
        retention is set), memory on, and everything it said owed to memory."""
        async with self.db.sessions.begin() as s:
            claimed = await s.execute(
                update(ChatSession)
                .where(
                    ChatSession.id == session_id,
                    ChatSession.user_id.is_(None),
                    ChatSession.anon_token_hash == anon_token_hash,
                )
                .values(
                    user_id=user_id,
                    anon_token_hash=None,
                    memory_enabled=True,
                    memory_saved_seq=0,
                    expires_at=(func.now() + self.retention) if self.retention else None,
                    updated_at=func.now(),
                )
                .returning(ChatSession.id)
            )
            if claimed.scalar_one_or_none() is None:
                raise SessionNotFound("session not found")
        return await self.get(session_id, Owner(user_id=user_id))

    async def delete(
        self, session_id: str, owner: Owner | None = None, *, forget: bool = False
    ) -> None:
        """Delete the session, its journal (cascade) and its checkpoints; with
        `forget`, the memories learned from it too.

        The row is locked first, so a memory save racing with this either
        finishes before (and its memories are forgotten here) or sees no session.
        """
        session = await self.get(session_id, owner, include_expired=owner is None)
        async with self.db.sessions.begin() as s:
            await s.execute(
                select(ChatSession.id).where(ChatSession.id == session.id).with_for_update()
            )
            if forget:
                await s.execute(delete(Memory).where(Memory.source_session_id == session.id))
            await s.execute(delete(ChatSession).where(ChatSession.id == session.id))
        await delete_thread(self.db.pool, session.id)

    async def copy(
        self, session_id: str, owner: Owner, renamed: Callable[[str, str], str]
    ) -> ChatSession:
        """A new session of the owner's holding `session_id`'s title, metadata
        and journal, in one transaction: each message under the id
        `renamed(id, role)` gives (called in journal order), the rest as it
        was. Its memory is saved to its end, as the original's lessons are the
        original's: the copy teaches nothing twice. No checkpoint: its first
        turn builds the window from the journal."""
        source = await self.get(session_id, owner)
        copy = ChatSession(
            id=str(uuid.uuid4()),
            user_id=source.user_id,
            anon_token_hash=source.anon_token_hash,
            title=source.title,
            expires_at=source.expires_at,
            message_count=source.message_count,
            last_seq=source.last_seq,
            memory_saved_seq=source.last_seq,
            memory_enabled=source.memory_enabled,
            metadata_=dict(source.metadata_ or {}),
        )
        columns = [c for c in MESSAGES.columns if c.key not in ("id", "session_id")]
        async with self.db.sessions.begin() as s:
            s.add(copy)
            await s.flush()
            after = -1
            while True:
                page = (
                    await s.execute(
                        select(MESSAGES.c.id, *columns)
                        .where(ChatMessage.session_id == source.id, ChatMessage.seq > after)
                        .order_by(ChatMessage.seq)
                        .limit(COPY_PAGE)
                    )
                ).all()
                if not page:
                    break
                rows = [
                    {
                        **{c.key: row._mapping[c] for c in columns},
                        "id": renamed(row.id, row.role),
                        "session_id": copy.id,
                    }
                    for row in page
                ]
                await s.execute(insert(MESSAGES), rows)
                after = page[-1].seq
        return await self.get(copy.id, owner)

    async def last_messages(self, session_ids: builtins.list[str]) -> dict[str, ChatMessage]:
        """The last message of each session, for previews in lists."""
        if not session_ids:
            return {}
        query = (
            select(ChatMessage)
            .distinct(ChatMessage.session_id)
            .where(ChatMessage.session_id.in_(session_ids))
            .order_by(ChatMessage.session_id, ChatMessage.seq.desc())
        )
        async with self.db.autocommit() as s:
            return {m.session_id: m for m in (await s.scalars(query)).all()}


def _matches(q: str) -> Any:
    """Title or any message matches `q`: full text in the `simple` configuration
    (no stemming assumed), or a substring (trigram-indexed) for languages whose
    words full text does not split, such as Korean particles or Japanese."""
    check_text(q, what="q")
    pattern = like_pattern(q)
    tsquery = func.plainto_tsquery("simple", q)
    message_hit = exists().where(
        ChatMessage.session_id == ChatSession.id,
        or_(
            func.to_tsvector("simple", ChatMessage.content).op("@@")(tsquery),
            ChatMessage.content.ilike(pattern),
        ),
    )
    return or_(ChatSession.title.ilike(pattern), message_hit)
