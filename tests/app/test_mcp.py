"""`threadline mcp`: every tool called through the MCP SDK's own stdio client."""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from app.auth import hash_password
from memory.db import open_database
from memory.journal import Journal, NewMessage
from memory.sessions import Owner, SessionStore
from memory.users import UserStore
from tests.support.server import ROOT

TOOLS = {  # what an MCP client is offered, over stdio and over HTTP alike
    "list_sessions",
    "search_sessions",
    "resume_session",
    "export_session",
    "merge_sessions",
    "cleanup_sessions",
}


async def seed(url: str) -> tuple[str, list[str], str]:
    """A user with two sessions (one mentions Seoul), and a stranger's session."""
    db = await open_database(url, pool_size=2)
    try:
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        user = await UserStore(db).create(email, hash_password("x" * 10), None)
        sessions = SessionStore(db, anon_ttl=timedelta(hours=1))
        journal = Journal(db, anon_ttl=timedelta(hours=1))
        ids = []
        for text in ("서울 여행 계획", "Groceries for the week"):
            session = await sessions.create(Owner(user_id=user.id), title=text)
            await journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", text))
            ids.append(session.id)
        stranger = await sessions.create(Owner(anon_token_hash="z" * 64))
        return email, ids, stranger.id
    finally:
        await db.close()


def data(result: Any) -> Any:
    """A tool's answer: its structured content (lists come wrapped as `result`)."""
    assert not result.is_error, result.content
    structured = result.structured_content
    if isinstance(structured, dict) and set(structured) == {"result"}:
        return structured["result"]
    return structured if structured is not None else json.loads(result.content[0].text)


async def test_every_tool_over_stdio(server_database: str, tmp_path: Path) -> None:
    email, (seoul, groceries), stranger = await seed(server_database)
    with psycopg.connect(server_database, autocommit=True) as conn:
        expired = str(uuid.uuid4())
        user_id = conn.execute("SELECT id FROM users WHERE email = %s", (email,)).fetchone()[0]
        conn.execute(
            "INSERT INTO chat_sessions (id, user_id, expires_at) VALUES (%s, %s, %s)",
            (expired, user_id, datetime.now(UTC) - timedelta(hours=1)),
        )
    env = {**os.environ, "DATABASE_URL": server_database}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "app", "mcp", "--user", email], cwd=str(ROOT), env=env
    )
    stderr = tmp_path / "mcp.stderr"
    with stderr.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as mcp,
        ):
            await mcp.initialize()
            names = {tool.name for tool in (await mcp.list_tools()).tools}
            assert names == TOOLS
            listed = data(await mcp.call_tool("list_sessions", {}))
            assert {s["id"] for s in listed} == {seoul, groceries}
            for limit in (-5, 0, 10**12):  # bounded to 1..100, never a crash
                assert len(data(await mcp.call_tool("list_sessions", {"limit": limit}))) >= 1
            latest = {"session_id": seoul, "recent": -1}
            assert len(data(await mcp.call_tool("resume_session", latest))["recent_messages"]) == 1
            found = data(await mcp.call_tool("search_sessions", {"query": "서울"}))
            assert [s["id"] for s in found] == [seoul]
            resumed = data(await mcp.call_tool("resume_session", {"session_id": seoul}))
            assert resumed["recent_messages"][0]["content"] == "서울 여행 계획"
            exported = data(await mcp.call_tool("export_session", {"session_id": seoul}))
            assert json.loads(exported)["format"] == "threadline.session"
            markdown = await mcp.call_tool("export_session", {"session_id": seoul, "format": "md"})
            assert "서울 여행 계획" in markdown.content[0].text
            assert data(await mcp.call_tool("cleanup_sessions", {}))["would_delete"] == [expired]
            assert data(await mcp.call_tool("cleanup_sessions", {"dry_run": False}))["deleted"] == 1
            merged = data(
                await mcp.call_tool("merge_sessions", {"session_id": seoul, "other_id": groceries})
            )
            assert merged["message_count"] == 2
            for tool, args in [
                ("resume_session", {"session_id": stranger}),
                ("resume_session", {"session_id": "not-a-uuid"}),
                ("merge_sessions", {"session_id": seoul, "other_id": seoul}),
                ("export_session", {"session_id": groceries}),  # merged away
            ]:
                refused = await mcp.call_tool(tool, args)
                assert refused.is_error, (tool, args)
                text = refused.content[0].text
                # The SDK's prefix, then our code and message: "...: not_found: ..."
                assert re.fullmatch(rf"Error executing tool {tool}: [a-z_]+: .+", text), text
    logged = stderr.read_text()  # refusals are answers, not crashes: nothing logged
    assert "Traceback" not in logged and "╭" not in logged, logged
    with psycopg.connect(server_database) as conn:
        assert conn.execute("SELECT 1 FROM chat_sessions WHERE id = %s", (stranger,)).fetchone()
