"""`threadline mcp`: the session tools for other agents, over stdio (the official
MCP SDK), scoped to one user given at start."""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from app.cli.runtime import owner_of
from app.exports import export_json, export_markdown
from app.logs import configure_logging
from app.schemas import session_out
from memory.errors import ThreadlineError
from memory.sessions import Owner
from threads.runtime import Runtime

INSTRUCTIONS = (
    "Threadline's conversations of one user: list and search them, resume one "
    "(its rolling summary and recent messages), export, merge, and clean up expired ones."
)


P = ParamSpec("P")
R = TypeVar("R")
# Who a tool call acts for, and on which runtime: given the call's context.
Acting = Callable[[Context], Awaitable[tuple[Runtime, Owner]]]


def told(tool: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A domain error (not found, busy, bad input) reaches the client as a tool error
    with its code and message; the SDK hides anything else as a crash."""

    @functools.wraps(tool)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await tool(*args, **kwargs)
        except ThreadlineError as exc:
            raise ToolError(f"{exc.code}: {exc}") from exc

    return run


def build_server(acting: Acting) -> MCPServer[Any]:
    """An MCP server whose every tool acts for the owner `acting` names for the
    call (one user over stdio; the key's user over HTTP), through the thread layer."""
    server: MCPServer[Any] = MCPServer("threadline", instructions=INSTRUCTIONS)

    @server.tool()
    @told
    async def list_sessions(
        ctx: Context, limit: int = 20, archived: bool = False
    ) -> list[dict[str, Any]]:
        """The user's sessions, newest activity first (at most 100)."""
        rt, owner = await acting(ctx)
        found, _ = await rt.deps.sessions.list(owner, archived=archived, limit=bounded(limit, 100))
        return [session_out(x) for x in found]

    @server.tool()
    @told
    async def search_sessions(ctx: Context, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Sessions whose title or messages match `query` (any language; at most 100)."""
        rt, owner = await acting(ctx)
        found, _ = await rt.deps.sessions.list(
            owner, archived=None, q=query, limit=bounded(limit, 100)
        )
        return [session_out(x) for x in found]

    @server.tool()
    @told
    async def resume_session(ctx: Context, session_id: str, recent: int = 20) -> dict[str, Any]:
        """Where a session stands: its rolling summary and its most recent messages
        (at most 200)."""
        rt, owner = await acting(ctx)
        session = await rt.threads.open(session_id, owner)
        messages, has_more = await rt.deps.journal.page(session.id, limit=bounded(recent, 200))
        state = await rt.threads.window(session)
        return {
            "session": session_out(session, messages[-1] if messages else None),
            "summary": state.get("summary", ""),
            "recent_messages": [m.as_dict() for m in messages],
            "older_messages": has_more,
        }

    @server.tool()
    @told
    async def export_session(
        ctx: Context, session_id: str, format: Literal["json", "md"] = "json"
    ) -> str:
        """The whole session as Threadline's versioned JSON, or as Markdown."""
        rt, owner = await acting(ctx)
        session, messages = await rt.threads.export(session_id, owner)
        if format == "md":
            return export_markdown(session, messages)
        return json.dumps(export_json(session, messages), ensure_ascii=False)

    @server.tool(name="merge_sessions")
    @told
    async def merge_two(ctx: Context, session_id: str, other_id: str) -> dict[str, Any]:
        """Merge `other_id` into `session_id`, messages ordered by time; `other_id` goes."""
        rt, owner = await acting(ctx)
        merged = await rt.threads.merge(session_id, other_id, owner)
        return session_out(merged)

    @server.tool()
    @told
    async def cleanup_sessions(ctx: Context, dry_run: bool = True) -> dict[str, Any]:
        """The user's expired sessions: listed (dry run) or deleted."""
        rt, owner = await acting(ctx)
        if dry_run:
            return {"would_delete": [e.id for e in await rt.threads.find_expired(owner)]}
        return {"deleted": await rt.threads.expire(owner)}

    return server


def bounded(count: int, most: int) -> int:
    """A count the model asked for, within 1..most: never an error, never a crash."""
    return max(1, min(count, most))


async def serve_stdio(rt: Runtime, email: str | None) -> None:
    owner = await owner_of(rt, email)
    # Our one-line JSON logs, warnings and worse: the SDK would log every refused
    # call at INFO and every crash as a Rich box on stderr, which the client shows.
    configure_logging("WARNING")
    await build_server(lambda ctx: _settled(rt, owner)).run_stdio_async()


async def _settled(rt: Runtime, owner: Owner) -> tuple[Runtime, Owner]:
    return rt, owner
