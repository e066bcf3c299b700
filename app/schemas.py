"""What the API sends (sessions, messages and users as JSON) and the base of what it takes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from memory.journal import is_utf8
from memory.models import ChatMessage, ChatSession, User


def refuse_nul(text: str) -> str:
    """PostgreSQL cannot store a NUL byte or a lone surrogate, so such text is
    refused up front (422)."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL byte")
    if not text.isascii() and not is_utf8(text):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return text


PlainText = Annotated[str, AfterValidator(refuse_nul)]


class RequestBody(BaseModel):
    """Base of request bodies: unknown fields and loosely typed values are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def session_out(session: ChatSession, last_message: ChatMessage | None = None) -> dict[str, Any]:
    """A session as every endpoint and the socket show it."""
    return {
        "id": session.id,
        "title": session.title,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "last_activity_at": session.last_activity_at.isoformat(),
        "expires_at": session.expires_at.isoformat() if session.expires_at else None,
        "message_count": session.message_count,
        "archived": session.archived,
        "memory": session.memory_enabled,
        "anonymous": session.user_id is None,
        "model": session.model_choice,  # None: the server's default (GET /api/models)
        "last_message": (
            {
                "role": last_message.role,
                "preview": last_message.content[:160],
                "created_at": last_message.created_at.isoformat(),
            }
            if last_message is not None
            else None
        ),
    }


def user_out(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": user.created_at.isoformat(),
        "retention_days": user.retention_days,
    }
