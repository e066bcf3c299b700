"""Importing conversations: written in one transaction, and idempotent: message
ids are keys, so importing a file twice adds nothing. The file is read by
memory/import_reading.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg.errors
import sqlalchemy.exc
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from memory.db import Database
from memory.errors import MessageIdConflict
from memory.import_reading import BATCH, derived_id, import_scope
from memory.journal import grow_session
from memory.models import ChatMessage, ChatSession
from memory.session_format import ImportedMessage, ImportedSession, UnreadableImport
from memory.sessions import Owner, clean_title

ID_ATTEMPTS = 4  # derivations tried when a derived id is someone else's too
T = TypeVar("T")


@dataclass
class ImportReport:
    sessions_created: int = 0
    sessions_extended: int = 0
    messages_added: int = 0
    messages_skipped: int = 0
    session_ids: list[str] = field(default_factory=list)


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
