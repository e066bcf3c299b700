"""SQLAlchemy models of the app tables (Alembic owns their schema)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, make_transient_to_detached, mapped_column


def new_id() -> str:
    return str(uuid.uuid4())


# Ids made here or by gen_random_uuid(): anything else names no row, and never
# reaches the database (a NUL byte in it would make PostgreSQL fail).
_MADE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def is_made_id(value: str) -> bool:
    """Whether `value` could be the id of a row (a lower-case UUID)."""
    return _MADE_ID.fullmatch(value) is not None


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


M = TypeVar("M", bound=Base)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Threads idle longer than this many days, and what was learned from them,
    # are deleted by the cleanup (None: kept, unless the server sets a retention).
    retention_days: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ux_users_email_lower", func.lower(email), unique=True),)


def detached(model: type[M], values: dict[str, Any]) -> M:
    """A `model` from its attributes read by plain SQL (a psycopg row of every
    column), as if loaded by the ORM (detached, not new)."""
    instance = model(**values)
    make_transient_to_detached(instance)
    return instance


class AuthToken(Base):
    __tablename__ = "auth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """A personal API key (`x-api-key`): long-lived, named, revocable; only its
    SHA-256 is kept, and its first characters to tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


class AnonymousOwner(Base):
    """An anonymous owner the server issued a token to (only its hash is kept).

    The window of life slides: each use moves `expires_at` to `last_seen_at` plus
    the window the owner was issued with (`expires_at - last_seen_at`).
    """

    __tablename__ = "anonymous_owners"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    anon_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_activity_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    memory_saved_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    archived: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    memory_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=text("'{}'::jsonb")
    )

    @property
    def model_choice(self) -> str | None:
        """The model this chat chose (`metadata.model`); None: the server's default."""
        chosen = (self.metadata_ or {}).get("model")
        return chosen if isinstance(chosen, str) else None

    @property
    def tags(self) -> dict[str, Any]:
        """What a client of the Agent Server API keeps on the thread (its
        `metadata`, as `metadata.tags` here): Threadline reads none of it."""
        tags = (self.metadata_ or {}).get("tags")
        return tags if isinstance(tags, dict) else {}

    __table_args__ = (
        Index("ix_chat_sessions_user_activity", "user_id", last_activity_at.desc()),
        Index("ix_chat_sessions_expires_at", "expires_at"),
        Index(
            "ix_chat_sessions_memory_pending",
            "id",
            postgresql_where=text(
                "user_id IS NOT NULL AND memory_enabled AND memory_saved_seq < last_seq"
            ),
        ),
    )


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    tools_used: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    token_count: Mapped[int | None] = mapped_column(Integer)
    has_error: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    error_message: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ux_chat_messages_session_seq", "session_id", "seq", unique=True),
        Index(
            "ix_chat_messages_content_fts",
            text("to_tsvector('simple', content)"),
            postgresql_using="gin",
        ),
        Index(
            "ix_chat_messages_content_trgm",
            "content",
            postgresql_using="gin",
            postgresql_ops={"content": "gin_trgm_ops"},
        ),
    )

    def as_dict(self) -> dict[str, Any]:
        """The message as clients see it."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "seq": self.seq,
            "role": self.role,
            "content": self.content,
            "created_at": self.created_at.isoformat(),
            "tools_used": self.tools_used,
            "processing_time_ms": self.processing_time_ms,
            "token_count": self.token_count,
            "has_error": self.has_error,
            "error_message": self.error_message,
            "cancelled": bool(self.metadata_.get("cancelled", False)),
            "reply_to": self.metadata_.get("reply_to"),
            "memories_used": self.metadata_.get("memories", []),
            # The supervisor loop's record (graph/nodes.py): the last plan step,
            # each pass with its plan or tools and duration, and whether the
            # step limit ended the loop.
            "plan": self.metadata_.get("plan"),
            "steps": self.metadata_.get("steps", []),
            "limit_reached": bool(self.metadata_.get("limit_reached", False)),
        }


class Memory(Base):
    __tablename__ = "memories"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "key": self.key,
            "content": self.content,
            "source_session_id": self.source_session_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str | None] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    source_session_id: Mapped[str | None] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Stored by PostgreSQL (migration 0003); loaded only when asked for.
    search: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('simple'::regconfig, coalesce(key, '') || ' ' || content)"),
        deferred=True,
    )
    # The model that made this row's embedding (migration 0005); NULL: none yet.
    # The `embedding` column itself exists only with pgvector and is read and
    # written by memory/vectors.py alone.
    embedding_model: Mapped[str | None] = mapped_column(String(200), deferred=True)

    __table_args__ = (
        Index("ix_memories_user_kind_updated", "user_id", "kind", updated_at.desc()),
        Index(
            "ux_memories_summary_per_session",
            "user_id",
            "source_session_id",
            unique=True,
            postgresql_where=text("kind = 'summary'"),
        ),
        Index(
            "ux_memories_user_kind_key",
            "user_id",
            "kind",
            "key",
            unique=True,
            postgresql_where=text("key IS NOT NULL"),
        ),
        Index(
            "ix_memories_user_search",
            "user_id",
            "search",
            postgresql_using="gin",
            postgresql_where=text("kind IN ('entity', 'fact')"),
        ),
        Index(
            "ix_memories_user_content_trgm",
            "user_id",
            "content",
            postgresql_using="gin",
            postgresql_ops={"content": "gin_trgm_ops"},
            postgresql_where=text("kind IN ('entity', 'fact')"),
        ),
    )
