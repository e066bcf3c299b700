"""`threadline mcp`: the session tools for other agents, over stdio (the official
MCP SDK), scoped to one user given at start."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer

from app.export import all_messages, export_json, export_markdown
from app.operations import Stores, stores
from app.schemas import session_out
from app.settings import Settings
from graph.builder import build_graph
from graph.turn import read_window
from memory.maintenance import cleanup_expired, find_expired, merge_sessions
from memory.sessions import Owner

INSTRUCTIONS = (
    "Threadline's conversations of one user: list and search them, resume one "
    "(its rolling summary and recent messages), export, merge, and clean up expired ones."
)


def build_server(s: Stores, owner: Owner) -> MCPServer[Any]:
    """An MCP server whose every tool acts for `owner` only."""
    server: MCPServer[Any] = MCPServer("threadline", instructions=INSTRUCTIONS)

    @server.tool()
    async def list_sessions(limit: int = 20, archived: bool = False) -> list[dict[str, Any]]:
        """The user's sessions, newest activity first."""
        found, _ = await s.sessions.list(owner, archived=archived, limit=min(limit, 100))
        return [session_out(x) for x in found]

    @server.tool()
    async def search_sessions(query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Sessions whose title or messages match `query` (any language)."""
        found, _ = await s.sessions.list(owner, archived=None, q=query, limit=min(limit, 100))
        return [session_out(x) for x in found]

    @server.tool()
    async def resume_session(session_id: str, recent: int = 20) -> dict[str, Any]:
        """Where a session stands: its rolling summary and its most recent messages."""
        session = await s.sessions.get(session_id, owner)
        messages, has_more = await s.journal.page(session.id, limit=min(recent, 200))
        state = await read_window(build_graph(), s.db.pool, session.id)
        return {
            "session": session_out(session, messages[-1] if messages else None),
            "summary": state.get("summary", ""),
            "recent_messages": [m.as_dict() for m in messages],
            "older_messages": has_more,
        }

    @server.tool()
    async def export_session(session_id: str, format: Literal["json", "md"] = "json") -> str:
        """The whole session as Threadline's versioned JSON, or as Markdown."""
        session = await s.sessions.get(session_id, owner)
        messages = await all_messages(s.journal, session.id)
        if format == "md":
            return export_markdown(session, messages)
        return json.dumps(export_json(session, messages), ensure_ascii=False)

    @server.tool(name="merge_sessions")
    async def merge_two(session_id: str, other_id: str) -> dict[str, Any]:
        """Merge `other_id` into `session_id`, messages ordered by time; `other_id` goes."""
        merged = await merge_sessions(s.sessions, session_id, other_id, owner)
        return session_out(merged)

    @server.tool()
    async def cleanup_sessions(dry_run: bool = True) -> dict[str, Any]:
        """The user's expired sessions: listed (dry run) or deleted."""
        retention = s.sessions.retention
        if dry_run:
            expired = await find_expired(s.db, retention, owner=owner)
            return {"would_delete": [e.id for e in expired]}
        removed = await cleanup_expired(
            s.sessions,
            retention=retention,
            forget_memories=s.settings.cleanup_forgets_memories,
            owner=owner,
        )
        return {"deleted": removed}

    return server


def serve_stdio(settings: Settings, url: str, email: str | None) -> None:
    async def main() -> None:
        async with stores(settings, url) as opened:
            owner = await opened.owner(email)
            await build_server(opened, owner).run_stdio_async()

    asyncio.run(main())
