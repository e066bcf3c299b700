"""Accounts over REST: register, log in and out, me, password change, account deletion,
and login throttling, against a real uvicorn on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import psycopg
import pytest

from app.ratelimit import FIRST_WAIT_S, FREE_PASSWORD_FAILURES, RateLimited, RateLimits
from memory.db import libpq_url
from tests.support.identities import anonymous_session, seed_messages
from tests.support.server import ServerProcess

PASSWORD = "correct horse battery"


def unique_email(domain: str = "example.com") -> str:
    return f"user-{uuid.uuid4().hex[:12]}@{domain}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def set_cookies(reply: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header of a reply, by cookie name."""
    return {h.split("=", 1)[0]: h for h in reply.headers.get_list("set-cookie")}


def cookieless() -> CookieJar:
    """A jar that keeps nothing, so a client proves who it is by headers alone."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


async def register(api: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict:
    reply = await api.post("/api/auth/register", json={"email": email, "password": password})
    assert reply.status_code == 201, reply.text
    return reply.json()


async def login(api: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    reply = await api.post("/api/auth/login", json={"email": email, "password": password})
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


async def test_register_login_me_logout(api: httpx.AsyncClient) -> None:
    email = unique_email()
    reply = await api.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "display_name": "Ada"}
    )
    assert reply.status_code == 201
    user = reply.json()
    assert user["email"] == email and user["display_name"] == "Ada"
    assert set(user) == {"id", "email", "display_name", "created_at", "retention_days"}
    assert user["retention_days"] is None  # off by default

    reply = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 200
    assert reply.json()["user"] == user
    token = reply.json()["token"]
    assert (await api.get("/api/auth/me", headers=bearer(token))).json() == user

    assert (await api.post("/api/auth/logout", headers=bearer(token))).status_code == 204
    reply = await api.get("/api/auth/me", headers=bearer(token))
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "unauthorized"


async def test_an_account_sets_its_retention(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    login = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    headers = bearer(login.json()["token"])
    for bad in (0, -1, 36501, "30", 1.5, True):
        reply = await api.patch("/api/auth/me", json={"retention_days": bad}, headers=headers)
        assert reply.status_code == 422, (bad, reply.text)
    assert (await api.patch("/api/auth/me", json={}, headers=headers)).status_code == 422
    reply = await api.patch("/api/auth/me", json={"retention_days": 90}, headers=headers)
    assert reply.status_code == 200 and reply.json()["retention_days"] == 90
    assert (await api.get("/api/auth/me", headers=headers)).json()["retention_days"] == 90
    reply = await api.patch("/api/auth/me", json={"retention_days": None}, headers=headers)
    assert reply.json()["retention_days"] is None
    anonymous = await api.patch("/api/auth/me", json={"retention_days": 5})
    assert anonymous.status_code == 401


async def test_login_cookie_is_httponly_lax_and_authenticates(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as browser:
        email = unique_email()
        await register(browser, email)
        reply = await browser.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        cookie = set_cookies(reply)["threadline_token"]
        assert cookie.startswith(f"threadline_token={reply.json()['token']};")
        flags = [part.strip().lower() for part in cookie.split(";")[1:]]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
        assert "secure" not in flags  # the test server is not served over https
        assert f"max-age={30 * 24 * 3600}" in flags

        assert (await browser.get("/api/auth/me")).json()["email"] == email  # the cookie alone

        reply = await browser.post("/api/auth/logout")
        assert reply.status_code == 204
        assert "max-age=0" in set_cookies(reply)["threadline_token"].lower()
        assert (await browser.get("/api/auth/me")).status_code == 401


async def test_logout_revokes_the_token_even_if_a_client_keeps_it(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(api, email)
    kept, other = await login(api, email), await login(api, email)
    await api.post("/api/auth/logout", headers=bearer(kept))
    assert (await api.get("/api/auth/me", headers=bearer(kept))).status_code == 401
    assert (await api.get("/api/auth/me", headers=bearer(other))).status_code == 200


async def test_logout_without_a_login_is_harmless(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/auth/logout")).status_code == 204
    reply = await api.post("/api/auth/logout", headers=bearer("not-a-token"))
    assert reply.status_code == 204


@pytest.mark.parametrize("variant", [str.upper, str.title, lambda e: f"  {e.upper()} "])
async def test_duplicate_email_in_any_case_is_409(api: httpx.AsyncClient, variant) -> None:
    email = unique_email()
    await register(api, email)
    reply = await api.post(
        "/api/auth/register", json={"email": variant(email), "password": PASSWORD}
    )
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "email_taken"


async def test_login_ignores_the_case_of_the_email(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(api, email)
    assert await login(api, email.upper())


async def test_wrong_password_and_unknown_email_answer_the_same(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(api, email)
    wrong = await api.post("/api/auth/login", json={"email": email, "password": "wrong password"})
    unknown = await api.post(
        "/api/auth/login", json={"email": unique_email(), "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


async def test_me_needs_a_login(api: httpx.AsyncClient) -> None:
    for headers in ({}, bearer("made-up"), {"Authorization": "Basic abc"}):
        reply = await api.get("/api/auth/me", headers=headers)
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "unauthorized"


async def test_password_change_revokes_other_tokens(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(api, email)
    current, elsewhere = await login(api, email), await login(api, email)
    reply = await api.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new one"},
        headers=bearer(current),
    )
    assert reply.status_code == 204
    assert (await api.get("/api/auth/me", headers=bearer(current))).status_code == 200
    assert (await api.get("/api/auth/me", headers=bearer(elsewhere))).status_code == 401
    old = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert old.status_code == 401
    assert await login(api, email, "a brand new one")


async def test_password_change_with_a_wrong_current_password_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    email = unique_email()
    await register(api, email)
    token = await login(api, email)
    reply = await api.post(
        "/api/auth/password",
        json={"current_password": "not my password", "new_password": "a brand new one"},
        headers=bearer(token),
    )
    assert reply.status_code == 403
    assert reply.json()["error"]["code"] == "wrong_password"
    assert await login(api, email)  # the old password still works
    assert (await api.get("/api/auth/me", headers=bearer(token))).status_code == 200


async def test_password_change_needs_a_login(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/api/auth/password", json={"current_password": PASSWORD, "new_password": "long enough"}
    )
    assert reply.status_code == 401


async def count_rows(database_url: str, user_id: str, session_ids: list[str]) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        counts = {}
        for name, query, arg in [
            ("users", "SELECT count(*) FROM users WHERE id = %s", user_id),
            ("tokens", "SELECT count(*) FROM auth_tokens WHERE user_id = %s", user_id),
            ("sessions", "SELECT count(*) FROM chat_sessions WHERE user_id = %s", user_id),
            (
                "messages",
                "SELECT count(*) FROM chat_messages WHERE session_id = ANY(%s)",
                session_ids,
            ),
        ]:
            row = await (await conn.execute(query, (arg,))).fetchone()
            counts[name] = row[0] if row else -1
        return counts


async def test_delete_account_removes_everything_of_it(
    server: ServerProcess, server_database: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as browser:
        email = unique_email()
        user = await register(browser, email)
        await login(browser, email)  # the cookie
        session_ids = []
        for title in ("first", "second"):
            reply = await browser.post("/api/sessions", json={"title": title})
            session_ids.append(reply.json()["id"])
        await seed_messages(server_database, session_ids[0], ["hello", "hi there"])
        before = await count_rows(server_database, user["id"], session_ids)
        assert before == {"users": 1, "tokens": 1, "sessions": 2, "messages": 2}

        reply = await browser.request("DELETE", "/api/auth/me", json={"password": PASSWORD})
        assert reply.status_code == 204
        assert "max-age=0" in set_cookies(reply)["threadline_token"].lower()

        after = await count_rows(server_database, user["id"], session_ids)
        assert after == {"users": 0, "tokens": 0, "sessions": 0, "messages": 0}
        assert (await browser.get("/api/auth/me")).status_code == 401
        gone = await browser.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert gone.status_code == 401
        await register(browser, email)  # the address is free again


async def test_delete_account_needs_the_password(api: httpx.AsyncClient) -> None:
    email = unique_email()
    await register(api, email)
    token = await login(api, email)
    wrong = await api.request(
        "DELETE", "/api/auth/me", json={"password": "not it"}, headers=bearer(token)
    )
    assert wrong.status_code == 403
    missing = await api.request("DELETE", "/api/auth/me", headers=bearer(token))
    assert missing.status_code == 422
    assert (await api.get("/api/auth/me", headers=bearer(token))).status_code == 200
    nobody = await api.request("DELETE", "/api/auth/me", json={"password": PASSWORD})
    assert nobody.status_code == 401


# --- a server of its own: rate limits on, served over https ---


@pytest.fixture(scope="module")
def limited_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Rate limits on, and configured as served over https (as behind a TLS proxy)."""
    log = Path(tmp_path_factory.mktemp("limited")) / "server.log"
    proc = ServerProcess(server_database, log, THREADLINE_RATE_LIMITS="on", THREADLINE_HTTPS="true")
    proc.start()
    yield proc
    proc.stop()


def from_address(ip: str) -> dict[str, str]:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1, so a test can pose as any client."""
    return {"X-Forwarded-For": ip}


async def test_login_attempts_are_throttled_per_address_and_per_email_from_it(
    limited_server: ServerProcess,
) -> None:
    """Per address, 10 password checks a minute whatever the account; per (email,
    address), a wait after a few failures. Nothing per email alone: the owner logs in
    from elsewhere while someone guesses (tests/security/test_identity.py, row 8)."""
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=15) as client:
        email = unique_email()
        await client.post(
            "/api/auth/register",
            json={"email": email, "password": PASSWORD},
            headers=from_address("10.0.0.1"),
        )
        attempt = {"email": email, "password": "guess"}
        statuses = [
            (
                await client.post("/api/auth/login", json=attempt, headers=from_address("10.0.0.2"))
            ).status_code
            for _ in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        reply = await client.post("/api/auth/login", json=attempt, headers=from_address("10.0.0.2"))
        assert reply.json()["error"]["code"] == "rate_limited"

        # The same account from another address: the right password works.
        right = {"email": email, "password": PASSWORD}
        reply = await client.post("/api/auth/login", json=right, headers=from_address("10.0.0.3"))
        assert reply.status_code == 200
        # Another account from the guessing address is not waiting ...
        other = {"email": unique_email(), "password": "guess"}
        reply = await client.post("/api/auth/login", json=other, headers=from_address("10.0.0.2"))
        assert reply.status_code == 401
        # ... until the address has spent its 10 checks this minute, for every account.
        for _ in range(2):
            await client.post("/api/auth/login", json=other, headers=from_address("10.0.0.2"))
        reply = await client.post("/api/auth/login", json=other, headers=from_address("10.0.0.2"))
        assert reply.status_code == 429


async def test_the_wait_doubles_with_each_failure_and_ends_with_the_right_password() -> None:
    limits = RateLimits(enabled=True)
    guesser, email = "10.0.1.1", "someone@example.com"
    for _ in range(FREE_PASSWORD_FAILURES):
        await limits.password_attempt(guesser, email)
        await limits.password_failed(guesser, email)
    for wait in (FIRST_WAIT_S, FIRST_WAIT_S * 2, FIRST_WAIT_S * 4):
        with pytest.raises(RateLimited, match=f"try again in {wait} s"):
            await limits.password_attempt(guesser, email)
        await limits.password_failed(guesser, email)  # a failure once the wait is over
    await limits.password_attempt("10.0.1.2", email)  # another address: no wait
    await limits.password_succeeded(guesser, email)
    await limits.password_attempt(guesser, email)  # the right password: afresh


async def test_cookies_are_secure_host_cookies_when_served_over_https(
    limited_server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=15) as client:
        email, address = unique_email(), from_address("10.0.9.1")
        creds = {"email": email, "password": PASSWORD}
        await client.post("/api/auth/register", json=creds, headers=address)
        reply = await client.post("/api/auth/login", json=creds, headers=address)
        assert reply.status_code == 200
        flags = set_cookies(reply)["__Host-threadline_token"].lower().split("; ")
        assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags
        assert "path=/" in flags and not [f for f in flags if f.startswith("domain")]
        reply = await client.post("/api/sessions", headers=address)
        assert "secure" in set_cookies(reply)["__Host-threadline_anon"].lower().split("; ")


async def test_identity_answers_200_for_everyone(
    api: httpx.AsyncClient, server_database: str
) -> None:
    """What a page asks first: nobody, a visitor and a user each get 200, and
    only a token the server issued counts as a visitor."""
    assert (await api.get("/api/auth/identity")).json() == {"user": None, "anonymous": False}
    made_up = await api.get("/api/auth/identity", headers={"X-Anon-Token": "made-up" * 8})
    assert made_up.status_code == 200 and made_up.json() == {"user": None, "anonymous": False}
    _, visitor = await anonymous_session(server_database)
    assert (await api.get("/api/auth/identity", headers=visitor)).json() == {
        "user": None,
        "anonymous": True,
    }
    email = unique_email()
    await register(api, email)
    reply = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    who = (await api.get("/api/auth/identity", headers=bearer(reply.json()["token"]))).json()
    assert who["user"]["email"] == email and who["anonymous"] is False
