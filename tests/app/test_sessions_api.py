"""Sessions over REST: create (logged in and anonymous), list, search, page, rename,
archive, delete, messages; and anonymous rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import psycopg
import pytest

from app.ratelimit import ANONYMOUS_TURNS_PER_ADDRESS, RateLimited, RateLimits
from memory.db import libpq_url
from tests.support.identities import anonymous_session, seed_messages
from tests.support.server import ServerProcess

PASSWORD = "correct horse battery"


async def user_headers(api: httpx.AsyncClient) -> dict[str, str]:
    """A new account's bearer header."""
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    reply = await api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert reply.status_code == 201, reply.text
    reply = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {reply.json()['token']}"}


async def create(api: httpx.AsyncClient, headers: dict[str, str], **body: object) -> dict:
    reply = await api.post("/api/sessions", json=body, headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


def set_cookies(reply: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in reply.headers.get_list("set-cookie")}


# --- create ---


async def test_logged_in_create_get_and_list(api: httpx.AsyncClient) -> None:
    me = await user_headers(api)
    session = await create(api, me, title="Trip planning")
    assert "anon_token" not in session and "threadline_anon" not in str(session)
    assert session["title"] == "Trip planning" and session["memory"] is True
    assert session["anonymous"] is False and session["message_count"] == 0
    assert session["archived"] is False and session["last_message"] is None
    for key in ("id", "created_at", "updated_at", "last_activity_at"):
        assert session[key]
    assert (await api.get(f"/api/sessions/{session['id']}", headers=me)).json() == session
    listed = (await api.get("/api/sessions", headers=me)).json()
    assert listed == {"sessions": [session], "next_cursor": None}


async def test_create_without_a_body_and_with_memory_off(api: httpx.AsyncClient) -> None:
    me = await user_headers(api)
    reply = await api.post("/api/sessions", headers=me)
    assert reply.status_code == 201 and reply.json()["title"] is None
    assert (await create(api, me, memory=False))["memory"] is False


async def test_anonymous_create_sets_an_owner_cookie_and_reuses_it(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as browser:
        reply = await browser.post("/api/sessions", json={"title": "hello", "memory": True})
        assert reply.status_code == 201
        first = reply.json()
        token = first.pop("anon_token")
        assert len(token) >= 32
        assert first["anonymous"] is True and first["memory"] is False  # never for anonymous
        assert first["expires_at"] is not None
        cookie = set_cookies(reply)["threadline_anon"]
        assert cookie.startswith(f"threadline_anon={token};")
        flags = [part.strip().lower() for part in cookie.split(";")[1:]]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
        assert "max-age=86400" in flags and "secure" not in flags

        reply = await browser.post("/api/sessions", json={})
        second = reply.json()
        assert "anon_token" not in second  # the browser's owner token was reused
        listed = (await browser.get("/api/sessions")).json()["sessions"]
        assert {s["id"] for s in listed} == {first["id"], second["id"]}
        # The cookie slides: every sessions call renews it for another TTL.
        assert (
            "max-age=86400"
            in set_cookies(await browser.get("/api/sessions"))["threadline_anon"].lower()
        )

    # The token works as a header too (clients without cookies).
    async with httpx.AsyncClient(base_url=server.url, timeout=15) as other:
        reply = await other.get(f"/api/sessions/{first['id']}", headers={"X-Anon-Token": token})
        assert reply.status_code == 200 and reply.json()["id"] == first["id"]


async def test_create_with_a_stale_login_is_refused(api: httpx.AsyncClient) -> None:
    """A revoked or made-up login token does not silently fall back to anonymous."""
    reply = await api.post("/api/sessions", headers={"Authorization": "Bearer made-up"})
    assert reply.status_code == 401


async def test_logged_in_user_with_an_anonymous_cookie_creates_their_own_session(
    api: httpx.AsyncClient,
) -> None:
    anon = (await api.post("/api/sessions")).json()["anon_token"]
    me = await user_headers(api)
    session = await create(api, {**me, "X-Anon-Token": anon})
    assert session["anonymous"] is False and "anon_token" not in session


# --- read, change, delete ---


async def test_rename_archive_and_list_by_archive_state(api: httpx.AsyncClient) -> None:
    me = await user_headers(api)
    kept, shelved = await create(api, me, title="kept"), await create(api, me, title="shelved")
    reply = await api.patch(f"/api/sessions/{shelved['id']}", json={"archived": True}, headers=me)
    assert reply.status_code == 200 and reply.json()["archived"] is True
    reply = await api.patch(
        f"/api/sessions/{kept['id']}", json={"title": "  renamed \n twice  "}, headers=me
    )
    assert reply.json()["title"] == "renamed twice"

    async def ids(archived: str | None) -> set[str]:
        params = {"archived": archived} if archived else {}
        listed = (await api.get("/api/sessions", params=params, headers=me)).json()
        return {s["id"] for s in listed["sessions"]}

    assert await ids(None) == await ids("false") == {kept["id"]}
    assert await ids("true") == {shelved["id"]}
    assert await ids("all") == {kept["id"], shelved["id"]}

    reply = await api.patch(f"/api/sessions/{kept['id']}", json={"title": ""}, headers=me)
    assert reply.json()["title"] is None  # an empty title clears it


async def test_delete_removes_the_session_and_its_messages(
    api: httpx.AsyncClient, server_database: str
) -> None:
    me = await user_headers(api)
    session = await create(api, me)
    await seed_messages(server_database, session["id"], ["one", "two"])
    reply = await api.delete(f"/api/sessions/{session['id']}", headers=me)
    assert reply.status_code == 204 and reply.content == b""
    assert (await api.get(f"/api/sessions/{session['id']}", headers=me)).status_code == 404
    async with await psycopg.AsyncConnection.connect(libpq_url(server_database)) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM chat_messages WHERE session_id = %s", (session["id"],)
        )
        assert await cur.fetchone() == (0,)
    assert (await api.delete(f"/api/sessions/{session['id']}", headers=me)).status_code == 404


async def test_delete_while_a_turn_holds_the_thread_is_busy(
    api: httpx.AsyncClient, server_database: str
) -> None:
    me = await user_headers(api)
    session = await create(api, me)
    lock = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
    async with await psycopg.AsyncConnection.connect(
        libpq_url(server_database), autocommit=True
    ) as conn:
        await conn.execute(lock, (session["id"],))  # as a running turn in another process
        reply = await api.delete(f"/api/sessions/{session['id']}", headers=me)
        assert reply.status_code == 409 and reply.json()["error"]["code"] == "busy"
        stranger = await user_headers(api)  # learns nothing, not even that it is busy
        reply = await api.delete(f"/api/sessions/{session['id']}", headers=stranger)
        assert reply.status_code == 404
        await conn.execute("SELECT pg_advisory_unlock_all()")
    assert (await api.delete(f"/api/sessions/{session['id']}", headers=me)).status_code == 204


# --- listing: paging, previews, search ---


async def test_list_pages_newest_activity_first(
    api: httpx.AsyncClient, server_database: str
) -> None:
    me = await user_headers(api)
    made = [(await create(api, me, title=f"s{i}"))["id"] for i in range(5)]
    await seed_messages(server_database, made[1], ["bump"])  # the most recent activity now
    expected = [made[1], made[4], made[3], made[2], made[0]]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/sessions", params=params, headers=me)).json()
        assert len(page["sessions"]) <= 2
        seen += [s["id"] for s in page["sessions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


async def test_list_carries_a_preview_of_the_last_message(
    api: httpx.AsyncClient, server_database: str
) -> None:
    me = await user_headers(api)
    session = await create(api, me)
    await seed_messages(
        server_database, session["id"], ["What is the capital of France?", "P" * 500]
    )
    listed = (await api.get("/api/sessions", headers=me)).json()["sessions"][0]
    assert listed["message_count"] == 2
    assert listed["last_message"]["role"] == "assistant"
    assert listed["last_message"]["preview"] == "P" * 160
    single = (await api.get(f"/api/sessions/{session['id']}", headers=me)).json()
    assert single["last_message"] == listed["last_message"]


@pytest.mark.parametrize(
    ("content", "query"),
    [
        ("어제 서울에 갔어요. 날씨가 좋았어요.", "서울"),  # a particle glued to the word
        ("昨日は東京で寿司を食べました。", "寿司"),  # no spaces at all
        ("Die Straße vor dem Haus ist schön breit.", "straße"),
        ("Wir haben über die Größe des Gartens gesprochen.", "Größe"),
        ("Ordinary English words about a picnic.", "picnic"),
    ],
)
async def test_search_finds_words_in_any_language(
    api: httpx.AsyncClient, server_database: str, content: str, query: str
) -> None:
    me = await user_headers(api)
    hit, miss = await create(api, me), await create(api, me, title="unrelated")
    await seed_messages(server_database, hit["id"], [content])
    await seed_messages(server_database, miss["id"], ["nothing to see here"])
    found = (await api.get("/api/sessions", params={"q": query}, headers=me)).json()
    assert [s["id"] for s in found["sessions"]] == [hit["id"]]


async def test_search_matches_titles_and_only_the_callers_sessions(
    api: httpx.AsyncClient,
) -> None:
    me, other = await user_headers(api), await user_headers(api)
    mine = await create(api, me, title="Rezepte für Käsespätzle")
    await create(api, other, title="Rezepte für Käsespätzle")
    found = (await api.get("/api/sessions", params={"q": "käsespätzle"}, headers=me)).json()
    assert [s["id"] for s in found["sessions"]] == [mine["id"]]
    for q in ("%", "_", "\\", "' OR 1=1 --"):
        reply = await api.get("/api/sessions", params={"q": q}, headers=me)
        assert reply.status_code == 200 and reply.json()["sessions"] == []


# --- messages ---


async def test_messages_page_by_seq(api: httpx.AsyncClient, server_database: str) -> None:
    me = await user_headers(api)
    session = await create(api, me)
    await seed_messages(server_database, session["id"], [f"message {i}" for i in range(1, 8)])
    url = f"/api/sessions/{session['id']}/messages"

    async def seqs(**params: int) -> tuple[list[int], bool]:
        page = (await api.get(url, params=params, headers=me)).json()
        return [m["seq"] for m in page["messages"]], page["has_more"]

    assert await seqs() == ([1, 2, 3, 4, 5, 6, 7], False)
    assert await seqs(limit=3) == ([5, 6, 7], True)  # the newest, ascending
    assert await seqs(limit=3, before_seq=5) == ([2, 3, 4], True)
    assert await seqs(limit=3, before_seq=2) == ([1], False)
    assert await seqs(limit=3, after_seq=2) == ([3, 4, 5], True)  # replay after a seq
    assert await seqs(limit=3, after_seq=5) == ([6, 7], False)
    assert await seqs(after_seq=2, before_seq=5) == ([3, 4], False)

    message = (await api.get(url, params={"limit": 1}, headers=me)).json()["messages"][0]
    for key in (
        "id",
        "seq",
        "role",
        "content",
        "created_at",
        "tools_used",
        "processing_time_ms",
        "token_count",
        "has_error",
        "error_message",
    ):
        assert key in message
    assert message["role"] == "user" and message["content"] == "message 7"


# --- anonymous rate limits ---


@pytest.fixture(scope="module")
def limited_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    log = Path(tmp_path_factory.mktemp("limited")) / "server.log"
    proc = ServerProcess(server_database, log, THREADLINE_RATE_LIMITS="on")
    proc.start()
    yield proc
    proc.stop()


async def test_anonymous_session_creation_is_limited_per_address(
    limited_server: ServerProcess,
) -> None:
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=15, cookies=jar) as client:
        busy = {"X-Forwarded-For": "10.1.0.1"}
        for _ in range(20):
            assert (await client.post("/api/sessions", headers=busy)).status_code == 201
        reply = await client.post("/api/sessions", headers=busy)
        assert reply.status_code == 429
        assert reply.json()["error"]["code"] == "rate_limited"
        reply = await client.post("/api/sessions", headers={"X-Forwarded-For": "10.1.0.2"})
        assert reply.status_code == 201  # another address is not affected

        # A logged-in user on the throttled address still creates sessions.
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        creds = {"email": email, "password": PASSWORD}
        await client.post("/api/auth/register", json=creds, headers={"X-Forwarded-For": "10.1.0.3"})
        login = await client.post("/api/auth/login", json=creds, headers=busy)
        me = {**busy, "Authorization": f"Bearer {login.json()['token']}"}
        assert (await client.post("/api/sessions", headers=me)).status_code == 201


async def test_anonymous_turns_are_limited_per_address() -> None:
    limits = RateLimits(enabled=True)
    for _ in range(ANONYMOUS_TURNS_PER_ADDRESS.amount):
        await limits.turn("10.2.0.1", anonymous=True)
    with pytest.raises(RateLimited) as caught:
        await limits.turn("10.2.0.1", anonymous=True)
    assert caught.value.code == "rate_limited"
    await limits.turn("10.2.0.2", anonymous=True)
    await limits.turn("10.2.0.1", anonymous=False)  # logged in: not limited


async def test_rate_limits_off_limits_nothing() -> None:
    limits = RateLimits(enabled=False)
    for _ in range(ANONYMOUS_TURNS_PER_ADDRESS.amount * 2):
        await limits.turn("10.3.0.1", anonymous=True)
        await limits.anonymous_session("10.3.0.1")
        await limits.password_attempt("10.3.0.1", "someone@example.com")


async def test_export_json_and_markdown(server, server_database) -> None:  # type: ignore[no-untyped-def]
    session_id, headers = await anonymous_session(server_database)
    await seed_messages(server_database, session_id, ["Wie spät ist es?", "**Zeit**"])
    url = f"{server.url}/api/sessions/{session_id}/export"
    exported = httpx.get(url, headers=headers, timeout=10)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    body = exported.json()
    assert (body["format"], body["version"]) == ("threadline.session", 1)
    assert [m["content"] for m in body["messages"]] == ["Wie spät ist es?", "**Zeit**"]
    assert [m["seq"] for m in body["messages"]] == [1, 2]
    markdown = httpx.get(url, params={"format": "md"}, headers=headers, timeout=10)
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "### You" in markdown.text and "Wie spät ist es?" in markdown.text
    # A made-up token proves nobody (401); another real owner learns nothing (404).
    assert httpx.get(url, headers={"X-Anon-Token": "nobody"}, timeout=10).status_code == 401
    _, stranger_headers = await anonymous_session(server_database)
    assert httpx.get(url, headers=stranger_headers, timeout=10).status_code == 404
    assert httpx.get(url, params={"format": "pdf"}, headers=headers, timeout=10).status_code == 422
