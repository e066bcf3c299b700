"""A session as a file, the same from REST, the CLI and MCP: versioned JSON (the
format lives in memory/session_format.py, which import reads too) or Markdown."""

from __future__ import annotations

from typing import Any

from app.schemas import session_out
from memory.models import ChatMessage, ChatSession
from memory.session_format import export_document, export_markdown

__all__ = ["export_json", "export_markdown"]


def export_json(session: ChatSession, messages: list[ChatMessage]) -> dict[str, Any]:
    return export_document(session_out(session, messages[-1] if messages else None), messages)
