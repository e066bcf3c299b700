"""Bad input over REST: every case gets a clear JSON error, stores nothing partial,
and none is a 500."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

PASSWORD = "correct horse battery"
NUL = "a\x00b"


@pytest.fixture
async def me(api: httpx.AsyncClient) -> dict[str, str]:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    await api.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    reply = await api.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {reply.json()['token']}"}


@pytest.fixture
async def session_id(api: httpx.AsyncClient, me: dict[str, str]) -> str:
    return (await api.post("/api/sessions", json={"title": "kept"}, headers=me)).json()["id"]


def refused(reply: httpx.Response, status: int = 422) -> dict:
    """The reply is the expected JSON error (never HTML, never a traceback)."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] and error["message"] and "Traceback" not in error["message"]
    return error


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/sessions"])
@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"email": ', b"\xff\xfe", b"[1, 2]", b'"text"', b"null"]
)
async def test_malformed_json_is_422(api: httpx.AsyncClient, path: str, raw: bytes) -> None:
    reply = await api.post(path, content=raw, headers={"Content-Type": "application/json"})
    if path == "/api/sessions" and raw == b"null":
        assert reply.status_code == 201  # a JSON null body is no body: the defaults
        return
    assert refused(reply)["code"] == "invalid_input"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": unique_email()},
        {"email": 42, "password": PASSWORD},
        {"email": unique_email(), "password": ["a", "list"]},
        {"email": unique_email(), "password": 12345678},
        {"email": unique_email(), "password": PASSWORD, "display_name": 7},
        {"email": unique_email(), "password": PASSWORD, "is_admin": True},
        {"email": unique_email(), "password": "short"},
        {"email": unique_email(), "password": "x" * 1025},
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "two@@example.com", "password": PASSWORD},
        {"email": "no-domain@", "password": PASSWORD},
        {"email": "spaces in@example.com", "password": PASSWORD},
        {"email": "x" * 320 + "@example.com", "password": PASSWORD},
        {"email": f"nul{NUL}@example.com", "password": PASSWORD},
        {"email": unique_email(), "password": f"long enough {NUL}"},
        {"email": unique_email(), "password": PASSWORD, "display_name": NUL},
        {"email": unique_email(), "password": PASSWORD, "display_name": "d" * 201},
    ],
)
async def test_bad_registrations_are_422_and_store_nothing(
    api: httpx.AsyncClient, body: dict
) -> None:
    refused(await api.post("/api/auth/register", json=body))
    if isinstance(body.get("email"), str) and "@" in body["email"] and NUL not in body["email"]:
        # Nothing was stored: the same address registers fine afterwards.
        reply = await api.post(
            "/api/auth/register", json={"email": body["email"], "password": PASSWORD}
        )
        assert reply.status_code in (201, 422)  # 422 only where the address itself is bad
        assert reply.status_code != 409


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.com"},
        {"email": "x@example.com", "password": None},
        {"email": ["x@example.com"], "password": PASSWORD},
        {"email": f"x{NUL}@example.com", "password": PASSWORD},
        {"email": "x@example.com", "password": NUL},
        {"email": "x@example.com", "password": PASSWORD, "remember_me": True},
    ],
)
async def test_bad_logins_are_422(api: httpx.AsyncClient, body: dict) -> None:
    refused(await api.post("/api/auth/login", json=body))


async def test_bad_password_changes_change_nothing(
    api: httpx.AsyncClient, me: dict[str, str]
) -> None:
    for body in (
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": NUL * 5},
        {"current_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": 123456789},
    ):
        refused(await api.post("/api/auth/password", json=body, headers=me))
    assert (await api.get("/api/auth/me", headers=me)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"title": 123},
        {"title": ["a"]},
        {"title": NUL},
        {"title": "t" * 201},
        {"memory": "no"},
        {"memory": 0},
        {"owner": "someone-else"},
        {"id": str(uuid.uuid4())},
    ],
)
async def test_bad_session_bodies_are_422_and_create_nothing(
    api: httpx.AsyncClient, me: dict[str, str], body: dict
) -> None:
    refused(await api.post("/api/sessions", json=body, headers=me))
    assert (await api.get("/api/sessions", headers=me)).json()["sessions"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"title": NUL},
        {"title": 5},
        {"archived": "yes"},
        {"archived": 1},
        {"archived": None, "title": ["x"]},
        {"message_count": 0},
        {"user_id": "someone"},
    ],
)
async def test_bad_patches_are_422_and_change_nothing(
    api: httpx.AsyncClient, me: dict[str, str], session_id: str, body: dict
) -> None:
    refused(await api.patch(f"/api/sessions/{session_id}", json=body, headers=me))
    session = (await api.get(f"/api/sessions/{session_id}", headers=me)).json()
    assert (session["title"], session["archived"]) == ("kept", False)


@pytest.mark.parametrize(
    "text",
    [
        "'); DROP TABLE chat_sessions; --",
        '" OR "1"="1',
        "<script>alert('x')</script>",
        "<img src=x onerror=alert(1)>",
        "Robert'); DELETE FROM users WHERE ('a'='a",
        "%_\\ 100% off_",
    ],
)
async def test_sql_and_html_in_titles_are_stored_verbatim(
    api: httpx.AsyncClient, me: dict[str, str], text: str
) -> None:
    reply = await api.post("/api/sessions", json={"title": text}, headers=me)
    assert reply.status_code == 201
    assert reply.headers["content-type"].startswith("application/json")
    created = reply.json()
    assert created["title"] == text
    renamed = await api.patch(f"/api/sessions/{created['id']}", json={"title": text}, headers=me)
    assert renamed.json()["title"] == text
    listed = (await api.get("/api/sessions", params={"q": text}, headers=me)).json()
    assert [s["title"] for s in listed["sessions"]] == [text]
    assert (await api.get("/api/auth/me", headers=me)).status_code == 200  # users survived


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-a-uuid",
        "1",
        "' OR '1'='1",
        "%00",
        "..%2F..%2Fetc%2Fpasswd",
        "x" * 5000,
        "00000000-0000-0000-0000-00000000000g",
        "<script>",
    ],
)
async def test_invalid_ids_in_paths_answer_like_missing_sessions(
    api: httpx.AsyncClient, me: dict[str, str], bad_id: str
) -> None:
    missing = str(uuid.uuid4())
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"title": "x"}),
        ("DELETE", "", None),
        ("GET", "/messages", None),
    ]:
        reply = await api.request(method, f"/api/sessions/{bad_id}{suffix}", json=body, headers=me)
        assert reply.headers["content-type"].startswith("application/json")
        if "%2F" in bad_id:  # an id with a slash routes to no endpoint: a plain JSON 404/405
            assert reply.status_code in (404, 405), (method, bad_id)
        else:
            assert reply.status_code == 404, (method, bad_id)
            expected = await api.request(
                method, f"/api/sessions/{missing}{suffix}", json=body, headers=me
            )
            assert reply.content == expected.content, (method, bad_id)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": -5},
        {"limit": "ten"},
        {"limit": 1.5},
        {"before_seq": -1},
        {"after_seq": "abc"},
        {"after_seq": 10**30},
        {"before_seq": "9" * 400},
        {"after_seq": NUL},
    ],
)
async def test_bad_message_paging_params_are_422(
    api: httpx.AsyncClient, me: dict[str, str], session_id: str, params: dict
) -> None:
    refused(await api.get(f"/api/sessions/{session_id}/messages", params=params, headers=me))


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"archived": "maybe"},
        {"q": NUL},
        {"q": "q" * 201},
        {"cursor": "not a cursor"},
        {"cursor": "é%%%"},
        {"cursor": "x" * 600},
        {"cursor": base64.urlsafe_b64encode(b'{"a": 1}').decode()},
        {"cursor": base64.urlsafe_b64encode(b'["not a time", "x"]').decode()},
        {"cursor": base64.urlsafe_b64encode(b"[1, 2, 3]").decode()},
    ],
)
async def test_bad_list_params_are_422(
    api: httpx.AsyncClient, me: dict[str, str], params: dict
) -> None:
    refused(await api.get("/api/sessions", params=params, headers=me))


async def test_a_cursor_hiding_a_nul_byte_is_422(
    api: httpx.AsyncClient, me: dict[str, str]
) -> None:
    raw = json.dumps(["2024-01-01T00:00:00+00:00", "\x00"]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode()
    refused(await api.get("/api/sessions", params={"cursor": cursor}, headers=me))


async def test_delete_account_without_a_body_is_422(
    api: httpx.AsyncClient, me: dict[str, str]
) -> None:
    refused(await api.request("DELETE", "/api/auth/me", headers=me))
    refused(await api.request("DELETE", "/api/auth/me", json={"password": 5}, headers=me))
    assert (await api.get("/api/auth/me", headers=me)).status_code == 200


async def test_wrong_methods_and_unknown_api_paths_are_json(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("PUT", "/api/sessions"),
        ("GET", "/api/auth/login"),
        ("POST", "/api/auth/me"),
        ("GET", "/api/no-such-thing"),
    ]:
        reply = await api.request(method, path)
        assert reply.status_code in (404, 405), (method, path)
        assert reply.headers["content-type"].startswith("application/json"), (method, path)
