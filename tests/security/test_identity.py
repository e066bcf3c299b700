"""Identity attacks, black-box against real servers: made-up anonymous tokens, the
terminal's owner, login throttling that locked owners out, weak passwords, logout
leaving the anonymous owner behind, and cookie names over https.

Every reply is checked for a 5xx (an httpx hook); refused requests write no rows.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.exceptions import ConnectionClosed

from app.cli.owner import TERMINAL_OWNER
from memory.db import libpq_url, open_database
from memory.sessions import SessionStore
from tests.support.identities import seed_messages
from tests.support.server import ServerProcess
from tests.support.ws import Socket

PASSWORD = "correct horse battery"


# --- helpers ---


async def refuse_server_errors(response: httpx.Response) -> None:
    if response.status_code >= 500:
        await response.aread()
        raise AssertionError(f"{response.request.url}: {response.status_code} {response.text}")


def client_for(server: ServerProcess) -> httpx.AsyncClient:
    """A client that keeps no cookies (every call shows its identity in headers)."""
    return httpx.AsyncClient(
        base_url=server.url,
        timeout=15,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        event_hooks={"response": [refuse_server_errors]},
    )


@pytest.fixture
async def client(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(server) as api:
        yield api


@pytest.fixture(scope="module")
def guarded_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Rate limits on, and served over https (as behind a TLS proxy)."""
    log = Path(tmp_path_factory.mktemp("guarded")) / "server.log"
    proc = ServerProcess(server_database, log, THREADLINE_RATE_LIMITS="on", THREADLINE_HTTPS="true")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def guarded(guarded_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(guarded_server) as api:
        yield api


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unique_email() -> str:
    return f"id-{uuid.uuid4().hex[:12]}@example.com"


def from_address(ip: str, **headers: str) -> dict[str, str]:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1, so a test can pose as any client."""
    return {"X-Forwarded-For": ip, **headers}


def set_cookies(reply: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in reply.headers.get_list("set-cookie")}


def error_code(reply: httpx.Response) -> str:
    code: str = reply.json()["error"]["code"]
    return code


async def count(database_url: str, query: str, *args: Any) -> int:
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        row = await (await conn.execute(query, args)).fetchone()
        return int(row[0]) if row else -1


async def account(api: httpx.AsyncClient, **headers: str) -> tuple[str, dict[str, str]]:
    """A new account, logged in: its email and bearer header."""
    email = unique_email()
    creds = {"email": email, "password": PASSWORD}
    reply = await api.post("/api/auth/register", json=creds, headers=headers)
    assert reply.status_code == 201, reply.text
    reply = await api.post("/api/auth/login", json=creds, headers=headers)
    assert reply.status_code == 200, reply.text
    return email, {"Authorization": f"Bearer {reply.json()['token']}"}


async def close_code(server: ServerProcess, session_id: str, headers: dict[str, str]) -> int:
    """The code a socket is closed with right after connecting."""
    sock = await Socket.open(server.ws_url, session_id, headers)
    try:
        with pytest.raises(ConnectionClosed) as closed:
            await sock.recv()
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code
    finally:
        await sock.close()


async def closed_with(sock: Socket) -> int:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await sock.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


# --- row 3: anonymous tokens are issued by the server, never adopted ---


async def test_3_a_made_up_anonymous_token_proves_nothing_and_is_never_adopted(
    client: httpx.AsyncClient, server: ServerProcess, server_database: str
) -> None:
    planted = secrets.token_urlsafe(32)  # what an attacker puts in a victim's browser
    for shown in (
        {"X-Anon-Token": "a"},
        {"X-Anon-Token": planted},
        {"Cookie": f"threadline_anon={planted}"},
    ):
        reply = await client.get("/api/sessions", headers=shown)
        assert reply.status_code == 401, shown
        assert error_code(reply) == "unauthorized"

    # The victim's browser starts chatting with the planted cookie: it gets an owner
    # of the server's making, and the cookie is replaced.
    reply = await client.post(
        "/api/sessions", json={}, headers={"Cookie": f"threadline_anon={planted}"}
    )
    assert reply.status_code == 201
    session_id, issued = reply.json()["id"], reply.json()["anon_token"]
    assert issued != planted and len(issued) >= 32
    assert set_cookies(reply)["threadline_anon"].startswith(f"threadline_anon={issued};")
    assert (
        await count(
            server_database,
            "SELECT count(*) FROM chat_sessions WHERE anon_token_hash = %s",
            sha256(planted),
        )
        == 0
    )

    # What the attacker holds reaches nothing, over REST or the socket.
    attacker = {"X-Anon-Token": planted}
    for path in ("", "/messages", "/export"):
        reply = await client.get(f"/api/sessions/{session_id}{path}", headers=attacker)
        assert reply.status_code == 401, path
    assert await close_code(server, session_id, attacker) == 4401

    # The victim chats, registers and claims the thread (the browser flow). The claim
    # ends the anonymous owner (it held nothing else): its cookie is cleared, a socket
    # it opened is closed, and its token proves nothing any more.
    victim = {"X-Anon-Token": issued}
    sock = await Socket.open(server.ws_url, session_id, victim)
    try:
        assert (await sock.recv())["type"] == "session"
        await sock.ask("my name is Mallory's victim")
        await sock.until("done")
        _, me = await account(client)
        reply = await client.post(f"/api/sessions/{session_id}/claim", headers={**victim, **me})
        assert reply.status_code == 200 and reply.json()["anonymous"] is False
        anon_cookies = [
            h for h in reply.headers.get_list("set-cookie") if h.startswith("threadline_anon=")
        ]
        assert len(anon_cookies) == 1 and "max-age=0" in anon_cookies[0].lower()
        assert await closed_with(sock) == 4401
    finally:
        await sock.close()
    assert (await client.get(f"/api/sessions/{session_id}", headers=victim)).status_code == 401
    assert (await client.get(f"/api/sessions/{session_id}", headers=me)).status_code == 200

    # An issued token that expired proves nothing either.
    reply = await client.post("/api/sessions", json={})
    lapsed = reply.json()["anon_token"]
    async with await psycopg.AsyncConnection.connect(libpq_url(server_database)) as conn:
        await conn.execute(
            "UPDATE anonymous_owners SET expires_at = now() - interval '1 second'"
            " WHERE token_hash = %s",
            (sha256(lapsed),),
        )
    assert (await client.get("/api/sessions", headers={"X-Anon-Token": lapsed})).status_code == 401


# --- row 4: the terminal's owner cannot be reached over HTTP ---


async def terminal_session(database_url: str) -> str:
    """A session of `threadline chat` (or a CLI import without --user), with a message."""
    db = await open_database(database_url, pool_size=2)
    try:
        session = await SessionStore(db, anon_ttl=timedelta(hours=24)).create(TERMINAL_OWNER)
    finally:
        await db.close()
    await seed_messages(database_url, session.id, ["terminal secret", "noted"])
    return session.id


async def test_4_the_terminal_owner_is_unreachable_over_http(
    client: httpx.AsyncClient, server: ServerProcess, server_database: str
) -> None:
    session_id = await terminal_session(server_database)
    sessions_before = await count(server_database, "SELECT count(*) FROM chat_sessions")
    for public in (
        {"X-Anon-Token": "threadline-terminal"},
        {"Cookie": "threadline_anon=threadline-terminal"},
    ):
        for method, path in [
            ("GET", "/api/sessions"),
            ("GET", f"/api/sessions/{session_id}"),
            ("GET", f"/api/sessions/{session_id}/messages"),
            ("GET", f"/api/sessions/{session_id}/export"),
            ("DELETE", f"/api/sessions/{session_id}"),
        ]:
            reply = await client.request(method, path, headers=public)
            assert reply.status_code == 401, (public, method, path)
        reply = await client.post(
            "/api/sessions/import",
            content=b'{"format": "x"}',
            headers={**public, "Content-Type": "application/json"},
        )
        assert reply.status_code == 401
        assert await close_code(server, session_id, public) == 4401
    assert await count(server_database, "SELECT count(*) FROM chat_sessions") == sessions_before

    # Creating a session with that header gets a new owner, which sees nothing of the terminal's.
    reply = await client.post(
        "/api/sessions", json={}, headers={"X-Anon-Token": "threadline-terminal"}
    )
    assert reply.status_code == 201 and reply.json()["anon_token"] != "threadline-terminal"
    listed = await client.get("/api/sessions", headers={"X-Anon-Token": reply.json()["anon_token"]})
    assert [s["id"] for s in listed.json()["sessions"]] == [reply.json()["id"]]
    # The terminal's thread is untouched.
    assert (
        await count(
            server_database, "SELECT count(*) FROM chat_messages WHERE session_id = %s", session_id
        )
        == 2
    )


# --- row 8: guessing is slowed per address and per (email, address); the owner gets in ---


async def test_8_wrong_passwords_slow_the_guesser_and_never_lock_out_the_owner(
    guarded: httpx.AsyncClient, server_database: str
) -> None:
    email = unique_email()
    creds = {"email": email, "password": PASSWORD}
    reply = await guarded.post("/api/auth/register", json=creds, headers=from_address("10.8.0.1"))
    assert reply.status_code == 201
    user_id = reply.json()["id"]

    async def guesses(address: str, target: str, times: int) -> list[httpx.Response]:
        attempt = {"email": target, "password": "not the password"}
        return [
            await guarded.post("/api/auth/login", json=attempt, headers=from_address(address))
            for _ in range(times)
        ]

    # One address hammers the account (ten wrong passwords locked the owner out): it
    # is the one slowed, after a few failures, even with the right password ...
    known = await guesses("10.8.0.2", email, 10)
    right = await guarded.post("/api/auth/login", json=creds, headers=from_address("10.8.0.2"))
    assert right.status_code == 429
    # ... while the owner, from anywhere else, logs in with the right password.
    owner = await guarded.post("/api/auth/login", json=creds, headers=from_address("10.8.0.4"))
    assert owner.status_code == 200, owner.text
    # An unknown email is treated exactly alike.
    unknown = await guesses("10.8.0.3", unique_email(), 10)
    statuses = [r.status_code for r in known]
    assert statuses == [r.status_code for r in unknown]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    assert set(statuses[statuses.index(429) :]) == {429}
    assert [r.content for r in known if r.status_code == 401] == [
        r.content for r in unknown if r.status_code == 401
    ]
    assert error_code(known[-1]) == "rate_limited"
    # And the owner's own slip-ups do not lock them out either: two wrong, then right.
    await guesses("10.8.0.5", email, 2)
    again = await guarded.post("/api/auth/login", json=creds, headers=from_address("10.8.0.5"))
    assert again.status_code == 200
    # Only the two successful logins wrote a token.
    assert (
        await count(server_database, "SELECT count(*) FROM auth_tokens WHERE user_id = %s", user_id)
        == 2
    )
    # (The per-address budget, whatever the account: tests/app/test_auth_api.py.)


# --- row 13: password rule, logout ends the anonymous owner, __Host- cookies over https ---


WEAK = [
    "        ",
    " " * 20,
    "12345678",
    "password",
    "Password1",
    "qwerty123",
    "  iloveyou  ",
    "abc    ",
]


async def test_13_weak_passwords_logout_and_https_cookie_names(
    client: httpx.AsyncClient,
    guarded: httpx.AsyncClient,
    server: ServerProcess,
    server_database: str,
) -> None:
    # A password rule, on register and on change, with a clear 422.
    for weak in WEAK:
        email = unique_email()
        reply = await client.post("/api/auth/register", json={"email": email, "password": weak})
        assert reply.status_code == 422, weak
        assert (
            error_code(reply) == "invalid_input" and "password" in reply.json()["error"]["message"]
        )
        assert (
            await count(
                server_database, "SELECT count(*) FROM users WHERE lower(email) = %s", email
            )
            == 0
        )
    email, me = await account(client)
    for weak in WEAK:
        reply = await client.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": weak},
            headers=me,
        )
        assert reply.status_code == 422, weak
        assert error_code(reply) == "invalid_input"
    reply = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 200  # the password did not change

    # Logout ends the anonymous owner too: both cookies cleared, the token proves
    # nothing, and a socket it opened is closed.
    reply = await client.post("/api/sessions", json={})
    visitor = {"X-Anon-Token": reply.json()["anon_token"]}
    session_id = reply.json()["id"]
    _, login = await account(client)
    sock = await Socket.open(server.ws_url, session_id, visitor)
    try:
        assert (await sock.recv())["type"] == "session"
        reply = await client.post("/api/auth/logout", headers={**visitor, **login})
        assert reply.status_code == 204
        cleared = set_cookies(reply)
        assert "max-age=0" in cleared["threadline_anon"].lower()
        assert "max-age=0" in cleared["threadline_token"].lower()
        assert await closed_with(sock) == 4401
    finally:
        await sock.close()
    assert (await client.get("/api/sessions", headers=visitor)).status_code == 401
    assert (await client.get(f"/api/sessions/{session_id}", headers=visitor)).status_code == 401

    # Over https the cookies are __Host- cookies (Secure, Path=/, no Domain), and
    # only that name is read.
    address = from_address("10.13.0.1")
    creds = {"email": unique_email(), "password": PASSWORD}
    assert (
        await guarded.post("/api/auth/register", json=creds, headers=address)
    ).status_code == 201
    reply = await guarded.post("/api/auth/login", json=creds, headers=address)
    token = reply.json()["token"]
    cookie = set_cookies(reply)["__Host-threadline_token"]
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in flags and "path=/" in flags and "httponly" in flags
    assert not any(flag.startswith("domain") for flag in flags)
    assert "threadline_token" not in set_cookies(reply)
    reply = await guarded.get(
        "/api/auth/me", headers={**address, "Cookie": f"__Host-threadline_token={token}"}
    )
    assert reply.status_code == 200
    reply = await guarded.get(
        "/api/auth/me", headers={**address, "Cookie": f"threadline_token={token}"}
    )
    assert reply.status_code == 401

    reply = await guarded.post("/api/sessions", json={}, headers=address)
    anon = reply.json()["anon_token"]
    cookie = set_cookies(reply)["__Host-threadline_anon"]
    assert "secure" in cookie.lower() and "path=/" in cookie.lower()
    prefixed = {**address, "Cookie": f"__Host-threadline_anon={anon}"}
    assert (await guarded.get("/api/sessions", headers=prefixed)).status_code == 200
    plain = {**address, "Cookie": f"threadline_anon={anon}"}
    assert (await guarded.get("/api/sessions", headers=plain)).status_code == 401
