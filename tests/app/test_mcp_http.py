"""MCP over streamable HTTP at /mcp: the MCP SDK's own client, with a personal
API key or a token; the tools act for that account only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.app.test_mcp import TOOLS, data
from tests.support.api import new_session, register
from tests.support.server import ServerProcess


def api_key(server: ServerProcess, headers: dict[str, str]) -> str:
    made = httpx.post(
        f"{server.url}/api/auth/api-keys", json={"name": "mcp"}, headers=headers, timeout=10
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


async def tools_as(server: ServerProcess, headers: dict[str, str]) -> dict[str, Any]:
    """Over one MCP connection: the tool names, the sessions listed, and what
    resuming a given session answers."""
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        names = {tool.name for tool in (await mcp.list_tools()).tools}
        listed = data(await mcp.call_tool("list_sessions", {}))
        found = data(await mcp.call_tool("search_sessions", {"query": "Lisbon"}))
        return {"names": names, "listed": listed, "found": found}


async def resume(server: ServerProcess, headers: dict[str, str], session_id: str) -> Any:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        return await mcp.call_tool("resume_session", {"session_id": session_id})


async def test_the_tools_over_http_act_for_the_keys_account(server: ServerProcess) -> None:
    owner, stranger = register(server), register(server)
    mine = new_session(server, owner, title="Trip to Lisbon")
    theirs = new_session(server, stranger, title="Lisbon, someone else's")
    key = api_key(server, owner)

    for headers in ({"x-api-key": key}, owner):  # a personal API key, or a token
        seen = await tools_as(server, headers)
        assert seen["names"] == TOOLS
        assert [s["id"] for s in seen["listed"]] == [mine["id"]]
        assert [s["id"] for s in seen["found"]] == [mine["id"]]

    resumed = await resume(server, {"x-api-key": key}, mine["id"])
    assert data(resumed)["session"]["title"] == "Trip to Lisbon"
    foreign = await resume(server, {"x-api-key": key}, theirs["id"])
    missing = await resume(server, {"x-api-key": key}, str(uuid.uuid4()))
    assert foreign.is_error and missing.is_error
    assert foreign.content[0].text == missing.content[0].text  # another's answers as a missing one


def test_mcp_over_http_needs_a_key_or_a_token(server: ServerProcess) -> None:
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"accept": "application/json, text/event-stream"}
    owner = register(server)
    revoked_key = api_key(server, owner)
    keys = httpx.get(f"{server.url}/api/auth/api-keys", headers=owner, timeout=10).json()
    httpx.delete(
        f"{server.url}/api/auth/api-keys/{keys['api_keys'][0]['id']}", headers=owner, timeout=10
    )
    for shown in (
        {},
        {"x-api-key": "tl_not-a-key"},
        {"x-api-key": revoked_key},
        {"authorization": "Bearer nope"},
    ):
        reply = httpx.post(
            f"{server.url}/mcp", json=hello, headers={**headers, **shown}, timeout=10
        )
        assert reply.status_code == 401, (shown, reply.text)
        assert reply.json()["error"]["code"] == "unauthorized"
    cookies_only = httpx.post(
        f"{server.url}/mcp",
        json=hello,
        headers=headers,
        cookies={"threadline_token": owner["Authorization"].split()[1]},
        timeout=10,
    )
    assert cookies_only.status_code == 401  # a cookie proves nothing here
    fine = httpx.post(f"{server.url}/mcp", json=hello, headers={**headers, **owner}, timeout=10)
    assert fine.status_code == 200, fine.text
