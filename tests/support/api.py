"""REST helpers for server tests: accounts and sessions through the real API."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.support.server import ServerProcess


def register(server: ServerProcess, password: str = "correct horse battery") -> dict[str, str]:
    """A new account, logged in; returns its bearer header."""
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = httpx.post(
        f"{server.url}/api/auth/register", json={"email": email, "password": password}, timeout=10
    )
    assert created.status_code == 201, created.text
    login = httpx.post(
        f"{server.url}/api/auth/login", json={"email": email, "password": password}, timeout=10
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


def new_session(server: ServerProcess, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    reply = httpx.post(f"{server.url}/api/sessions", json=body, headers=headers, timeout=10)
    assert reply.status_code == 201, reply.text
    session: dict[str, Any] = reply.json()
    return session


def memories(server: ServerProcess, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{server.url}/api/memories", params=params, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()["memories"]
    return found


def wait_for_memories(
    server: ServerProcess,
    headers: dict[str, str],
    count: int = 1,
    timeout: float = 20,
    **params: str,
) -> list[dict[str, Any]]:
    """Memories are saved after `done`; poll until at least `count` exist."""
    deadline = time.monotonic() + timeout
    while True:
        found = memories(server, headers, **params)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
