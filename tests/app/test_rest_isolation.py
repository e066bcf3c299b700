"""Isolation over REST: another user's session, or an anonymous owner's session seen by
anyone else, answers exactly like a session that does not exist."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.identities import anonymous_session, seed_messages, user_session

# Every session endpoint, as (method, path under /api/sessions/{id}, JSON body).
ENDPOINTS = [
    ("GET", "", None),
    ("PATCH", "", {"title": "taken over", "archived": True}),
    ("PATCH", "", {}),
    ("DELETE", "", None),
    ("DELETE", "?forget=true", None),
    ("GET", "/messages", None),
    ("GET", "/messages?after_seq=0&limit=5", None),
    ("GET", "/messages?before_seq=2", None),
]


async def stranger(kind: str, database_url: str) -> dict[str, str]:
    """Headers of someone who does not own the victim's session."""
    if kind == "no login":
        return {}
    if kind == "another user":
        return (await user_session(database_url))[1]
    return (await anonymous_session(database_url))[1]


async def victim(kind: str, database_url: str) -> tuple[str, dict[str, str], str]:
    """A session with a message carrying a secret word, its owner's headers, the word."""
    make = user_session if kind == "user" else anonymous_session
    session_id, headers = await make(database_url)
    secret = f"secret{uuid.uuid4().hex[:8]}"
    await seed_messages(database_url, session_id, [f"the password is {secret}", "noted"])
    return session_id, headers, secret


async def answer(
    api: httpx.AsyncClient, method: str, path: str, body: object, headers: dict[str, str]
) -> tuple[int, bytes]:
    reply = await api.request(method, path, json=body, headers=headers)
    assert reply.headers["content-type"].startswith("application/json")
    return reply.status_code, reply.content


@pytest.mark.parametrize("owner_kind", ["user", "anonymous"])
@pytest.mark.parametrize("stranger_kind", ["no login", "another user", "another anonymous owner"])
async def test_a_strangers_view_of_a_session_is_a_missing_session(
    api: httpx.AsyncClient, server_database: str, owner_kind: str, stranger_kind: str
) -> None:
    session_id, owner, _ = await victim(owner_kind, server_database)
    other = await stranger(stranger_kind, server_database)
    missing_id = str(uuid.uuid4())
    for method, suffix, body in ENDPOINTS:
        theirs = await answer(api, method, f"/api/sessions/{session_id}{suffix}", body, other)
        missing = await answer(api, method, f"/api/sessions/{missing_id}{suffix}", body, other)
        assert theirs == missing, (method, suffix)
        assert theirs[0] == (401 if stranger_kind == "no login" else 404), (method, suffix)

    # Nothing changed for the owner.
    reply = await api.get(f"/api/sessions/{session_id}", headers=owner)
    assert reply.status_code == 200
    assert reply.json()["title"] is None and reply.json()["archived"] is False
    messages = await api.get(f"/api/sessions/{session_id}/messages", headers=owner)
    assert len(messages.json()["messages"]) == 2


@pytest.mark.parametrize("owner_kind", ["user", "anonymous"])
@pytest.mark.parametrize("stranger_kind", ["another user", "another anonymous owner"])
async def test_lists_and_search_show_only_the_callers_sessions(
    api: httpx.AsyncClient, server_database: str, owner_kind: str, stranger_kind: str
) -> None:
    session_id, owner, secret = await victim(owner_kind, server_database)
    other = await stranger(stranger_kind, server_database)
    for params in ({}, {"q": secret}, {"archived": "all"}, {"q": secret, "archived": "all"}):
        listed = (await api.get("/api/sessions", params=params, headers=other)).json()
        assert session_id not in {s["id"] for s in listed["sessions"]}, params
    found = (await api.get("/api/sessions", params={"q": secret}, headers=owner)).json()
    assert [s["id"] for s in found["sessions"]] == [session_id]


async def test_no_identity_at_all_is_401_for_lists(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer made-up"}, {"Cookie": "threadline_token=x"}):
        reply = await api.get("/api/sessions", headers=headers)
        assert reply.status_code == 401
        assert reply.json()["error"]["code"] == "unauthorized"


async def test_an_anonymous_owner_made_over_rest_is_isolated_too(
    api: httpx.AsyncClient, server_database: str
) -> None:
    """The token the API hands out is the only key: another browser's token is not."""
    mine = (await api.post("/api/sessions", json={"title": "mine"})).json()
    theirs = (await api.post("/api/sessions", json={"title": "theirs"})).json()
    assert mine["anon_token"] != theirs["anon_token"]
    my_headers = {"X-Anon-Token": mine["anon_token"]}
    reply = await api.get(f"/api/sessions/{theirs['id']}", headers=my_headers)
    assert reply.status_code == 404
    listed = (await api.get("/api/sessions", headers=my_headers)).json()["sessions"]
    assert [s["id"] for s in listed] == [mine["id"]]
    # The same token as a cookie proves the same ownership.
    by_cookie = {"Cookie": f"threadline_anon={mine['anon_token']}"}
    assert (await api.get(f"/api/sessions/{mine['id']}", headers=by_cookie)).status_code == 200
    assert (await api.get(f"/api/sessions/{theirs['id']}", headers=by_cookie)).status_code == 404
