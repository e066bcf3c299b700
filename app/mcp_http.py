"""MCP over streamable HTTP at `/mcp`: the session tools `threadline mcp` offers
over stdio, for the account whose personal API key (`x-api-key`) or token
(`Authorization: Bearer`) the request carries. Cookies prove nothing here: a page
on another site could send them.

Stateless (every request stands alone, answered as JSON), so any server process
can answer any request. The SDK's own Host check is off: the perimeter
(app/security.py) checks hosts for every route.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import HTTPConnection
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.auth import token_hash
from app.cli.mcp import build_server
from memory.errors import SessionNotFound
from memory.sessions import Owner
from threads.access import Credentials
from threads.runtime import Runtime

OWNER = "threadline_owner"  # where KeyRequired leaves the caller, in the request's state


class KeyRequired:
    """Lets through a request with a live API key or token of a user; 401 otherwise."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = HTTPConnection(scope)
        runtime: Runtime = conn.app.state.runtime
        caller = await runtime.threads.identify(key_or_token(conn))
        if caller.user is None:
            await refuse(send)
            return
        scope.setdefault("state", {})[OWNER] = Owner(user_id=caller.user.id)
        await self.app(scope, receive, send)


def key_or_token(conn: HTTPConnection) -> Credentials:
    api_key = conn.headers.get("x-api-key", "").strip()
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    return Credentials(
        login_token_hash=token_hash(bearer) if bearer else None,
        api_key_hash=token_hash(api_key) if api_key else None,
    )


async def refuse(send: Send) -> None:
    body = json.dumps(
        {"error": {"code": "unauthorized", "message": "send an API key (x-api-key) or a token"}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def mount_mcp(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """Serve the tools at `/mcp`; returns what the app's lifespan must run around
    its serving (the SDK's session manager)."""

    async def acting(ctx: Context) -> tuple[Runtime, Owner]:
        state = getattr(ctx.request_context.request, "state", None)
        owner = getattr(state, OWNER, None)
        if not isinstance(owner, Owner):
            raise SessionNotFound("no caller")  # KeyRequired lets none through without one
        return app.state.runtime, owner

    server = build_server(acting)
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)
    endpoint = KeyRequired(StreamableHTTPASGIApp(server.session_manager))
    app.router.routes.append(Route("/mcp", endpoint=endpoint, methods=["GET", "POST", "DELETE"]))
    return server.session_manager.run()
