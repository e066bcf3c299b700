"""HTTP hardening, black-box against real servers: security headers on every
response, cross-site writes refused, Host checked, /metrics and the API docs
served by setting, logs without message content, memory ids validated.
docs/security.md has the threat model."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import ProgrammingError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from app.logs import JsonFormatter
from memory.schema import migrate_sync
from tests.support.api import new_session, register
from tests.support.database import throwaway_database
from tests.support.server import ServerProcess

PASSWORD = "correct horse battery"
EVIL = "http://evil.example"
REMOTE = {"X-Forwarded-For": "203.0.113.9"}  # as a trusted local proxy says of a remote client
DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.fixture(scope="module")
def opened(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Metrics public, docs off, one more origin and one more Host name trusted."""
    proc = ServerProcess(
        server_database,
        tmp_path_factory.mktemp("opened") / "server.log",
        THREADLINE_METRICS="on",
        THREADLINE_API_DOCS="off",
        THREADLINE_ALLOWED_ORIGINS='["https://app.example"]',
        THREADLINE_TRUSTED_HOSTS='["chat.example"]',
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def closed(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Metrics off, docs public."""
    proc = ServerProcess(
        server_database,
        tmp_path_factory.mktemp("closed") / "server.log",
        THREADLINE_METRICS="off",
        THREADLINE_API_DOCS="on",
    )
    proc.start()
    yield proc
    proc.stop()


def policy(reply: httpx.Response) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    header = reply.headers.get("content-security-policy", "")
    pairs = (part.strip().partition(" ") for part in header.split(";") if part.strip())
    return {name: sources.strip() for name, _, sources in pairs}


def assert_hardened(reply: httpx.Response, what: str) -> None:
    assert reply.headers.get("x-content-type-options") == "nosniff", what
    assert reply.headers.get("x-frame-options") == "DENY", what
    assert reply.headers.get("referrer-policy") == "no-referrer", what
    csp = policy(reply)
    for directive, sources in {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "object-src": "'none'",
    }.items():
        assert csp.get(directive) == sources, (what, directive, csp)
    assert csp["connect-src"].split()[0] == "'self'", what


# Row 5 and 12: a strict CSP and the other security headers on every response.
def test_every_response_carries_the_security_headers(server: ServerProcess) -> None:
    me = register(server)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        replies = {
            "page": http.get("/"),
            "api": http.get("/api/sessions", headers=me),
            "api 404": http.get("/api/no-such-thing"),
            "file 404": http.get("/no-such-file.png"),
            "script": http.get("/js/app.js"),
            "stylesheet": http.get("/styles.css"),
            "vendored": http.get("/vendor/purify.esm.js"),
            "422": http.post(
                "/api/sessions", content=b"{", headers={"Content-Type": "application/json"}
            ),
            "bad host": http.get("/", headers={"Host": "evil.example"}),
        }
    expected = {"page": 200, "api": 200, "api 404": 404, "file 404": 404, "script": 200}
    expected |= {"stylesheet": 200, "vendored": 200, "422": 422, "bad host": 400}
    assert {name: reply.status_code for name, reply in replies.items()} == expected
    for name, reply in replies.items():
        assert_hardened(reply, name)
    connect_src = policy(replies["page"])["connect-src"].split()
    assert f"ws://127.0.0.1:{server.port}" in connect_src  # the socket, to this host only


def browser_headers(origin: str | None, site: str | None, cookie: str) -> dict[str, str]:
    headers = {"Cookie": cookie, "Content-Type": "text/plain"}
    if origin is not None:
        headers["Origin"] = origin
    if site is not None:
        headers["Sec-Fetch-Site"] = site
    return headers


# Row 6: a page elsewhere posts a form (enctype=text/plain) into the API with the
# victim's cookies; the browser says where it comes from, and the API refuses.
def test_cross_site_writes_are_refused_and_write_nothing(
    server: ServerProcess, server_database: str
) -> None:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert (
            http.post("/api/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
        login = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        cookie = "; ".join(f"{name}={value}" for name, value in login.cookies.items())
        mine = http.post("/api/sessions", json={"title": "mine"}, headers={"Cookie": cookie}).json()
        other_port = f"http://127.0.0.1:{server.port + 1}"  # same site, another origin
        forgeries = [
            (EVIL, "cross-site"),
            (EVIL, None),
            (None, "cross-site"),
            (other_port, "same-site"),
            ("null", None),
        ]
        body = b'{"title": "forged", "ignored": "="}'
        for origin, site in forgeries:
            headers = browser_headers(origin, site, cookie)
            for method, path in [
                ("POST", "/api/sessions"),
                ("PATCH", f"/api/sessions/{mine['id']}"),
                ("DELETE", f"/api/sessions/{mine['id']}"),
                ("POST", "/api/memories"),
                ("POST", "/api/auth/logout"),
                ("POST", "/api/auth/password"),
                ("POST", "/api/auth/api-keys"),
                ("POST", "/threads"),  # the Agent Server API too
                ("POST", f"/threads/{mine['id']}/runs/wait"),
                ("DELETE", f"/threads/{mine['id']}"),
            ]:
                reply = http.request(method, path, content=body, headers=headers)
                assert reply.status_code == 403, (origin, site, method, path, reply.text)
                assert reply.json()["error"]["code"] == "cross_site"
        assert (
            http.get("/api/auth/me", headers={"Cookie": cookie}).status_code == 200
        )  # not logged out
        assert (
            http.get(f"/api/sessions/{mine['id']}", headers={"Cookie": cookie}).json()["title"]
            == "mine"
        )
        with psycopg.connect(server_database) as conn:
            forged = conn.execute(
                "SELECT count(*) FROM chat_sessions WHERE title = 'forged'"
            ).fetchone()
        assert forged == (0,)

        # The app's own pages still write; so do clients that are no browser.
        same_origin = {"Cookie": cookie, "Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        assert http.post("/api/sessions", json={}, headers=same_origin).status_code == 201
        assert http.post("/api/sessions", json={}, headers={"Cookie": cookie}).status_code == 201
        # A JSON endpoint takes JSON only, whoever sends it.
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            reply = http.post(
                "/api/sessions",
                content=b'{"title": "x"}',
                headers={**same_origin, "Content-Type": content_type},
            )
            assert reply.status_code == 415, (content_type, reply.text)
            assert reply.json()["error"]["code"] == "unsupported_media_type"


def test_an_allowed_origin_may_write(opened: ServerProcess) -> None:
    headers = {"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}
    assert (
        httpx.post(f"{opened.url}/api/sessions", json={}, headers=headers, timeout=10).status_code
        == 201
    )
    headers["Origin"] = "https://app.example.evil.example"
    assert (
        httpx.post(f"{opened.url}/api/sessions", json={}, headers=headers, timeout=10).status_code
        == 403
    )


# Row 12: DNS rebinding. A name the attacker controls resolves to 127.0.0.1; the
# browser then sends that name as Host. Only the names this server is known by pass.
def test_an_unknown_host_is_refused(server: ServerProcess, opened: ServerProcess) -> None:
    port = server.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", ""):
        reply = httpx.get(f"{server.url}/api/health", headers={"Host": host}, timeout=10)
        assert reply.status_code == 400, host
        assert reply.json()["error"]["code"] == "invalid_host", host
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        assert (
            httpx.get(f"{server.url}/api/health", headers={"Host": host}, timeout=10).status_code
            == 200
        )
    rebound = socket.create_connection(("127.0.0.1", port))  # as if evil.example -> 127.0.0.1
    with pytest.raises(InvalidStatus):
        connect(f"ws://evil.example:{port}/ws/sessions/{uuid.uuid4()}", sock=rebound)
    trusted = httpx.get(f"{opened.url}/api/health", headers={"Host": "chat.example"}, timeout=10)
    assert trusted.status_code == 200
    assert (
        httpx.get(f"{server.url}/api/health", headers={"Host": "chat.example"}).status_code == 400
    )


def statuses(server: ServerProcess, headers: dict[str, str] | None = None) -> dict[str, int]:
    return {
        path: httpx.get(f"{server.url}{path}", headers=headers, timeout=10).status_code
        for path in ("/metrics", *DOCS)
    }


# Row 12: /metrics and the API docs by setting: "loopback" (the default) serves
# clients on this machine only, "off" nobody, "on" everyone.
def test_metrics_and_docs_are_served_by_setting(
    server: ServerProcess, opened: ServerProcess, closed: ServerProcess
) -> None:
    assert statuses(server) == {"/metrics": 200, "/docs": 200, "/redoc": 200, "/openapi.json": 200}
    assert statuses(server, REMOTE) == {
        "/metrics": 404,
        "/docs": 404,
        "/redoc": 404,
        "/openapi.json": 404,
    }
    assert statuses(opened) == {"/metrics": 200, "/docs": 404, "/redoc": 404, "/openapi.json": 404}
    assert statuses(opened, REMOTE) == statuses(opened)
    assert statuses(closed) == {"/metrics": 404, "/docs": 200, "/redoc": 200, "/openapi.json": 200}
    assert statuses(closed, REMOTE) == statuses(closed)
    refused = httpx.get(f"{server.url}/metrics", headers=REMOTE, timeout=10)
    assert refused.json()["error"]["code"] == "not_found"
    assert_hardened(refused, "refused /metrics")


REFUSE_MARKED = """
CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.content LIKE '%plugh%' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse_marked BEFORE INSERT ON memories
  FOR EACH ROW EXECUTE FUNCTION refuse_marked();
CREATE TRIGGER refuse_marked BEFORE INSERT ON chat_messages
  FOR EACH ROW EXECUTE FUNCTION refuse_marked();
"""


def query_over_socket(server: ServerProcess, headers: dict[str, str], content: str) -> str:
    session = new_session(server, headers)
    with connect(f"{server.ws_url}/ws/sessions/{session['id']}", additional_headers=headers) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session"
        ws.send(json.dumps({"type": "query", "id": str(uuid.uuid4()), "content": content}))
        while (frame := json.loads(ws.recv(timeout=20)))["type"] not in ("error", "done"):
            pass
    return str(frame["type"])


# Row 10: the log keeps ids, codes and timings; never what people wrote. Here the
# database refuses content (a trigger), so the errors carry it in their
# statement parameters, and searches carry it in query strings.
def test_message_content_never_reaches_the_log(pg_server: str, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with throwaway_database(pg_server, prefix="tl_logs") as url:
        migrate_sync(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(REFUSE_MARKED)
        server = ServerProcess(url, log)
        server.start()
        try:
            me = register(server)
            saved = httpx.post(
                f"{server.url}/api/memories",
                json={"content": "plugh-memory-1"},
                headers=me,
                timeout=10,
            )
            assert saved.status_code == 500 and "plugh" not in saved.text
            assert_hardened(saved, "500")  # an unexpected error still passes the perimeter
            for path in ("/api/sessions", "/api/memories"):
                found = httpx.get(f"{server.url}{path}", params={"q": "plugh-search-2"}, headers=me)
                assert found.status_code == 200
            assert query_over_socket(server, me, "my plugh-message-3") == "error"
        finally:
            server.stop()
    text = log.read_text()
    assert "plugh" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(e.get("path") == "/api/sessions" and e.get("status") == 200 for e in entries)
    assert any("unhandled error on POST /api/memories" in e["msg"] for e in entries)
    assert any(e["msg"] == "turn failed" for e in entries)


# Row 9 (part): a memory or API key id that is no UUID (a NUL byte, SQL, 5000
# characters) is simply not found, exactly like a UUID that names nothing.
@pytest.mark.parametrize(
    "path, requests",
    [
        ("/api/memories", (("GET", None), ("PATCH", {"content": "x"}), ("DELETE", None))),
        ("/api/auth/api-keys", (("DELETE", None),)),
    ],
)
def test_ids_that_are_no_uuid_are_not_found(
    server: ServerProcess, path: str, requests: tuple[tuple[str, Any], ...]
) -> None:
    me = register(server)
    missing = str(uuid.uuid4())
    with httpx.Client(base_url=server.url, headers=me, timeout=10) as http:
        for bad_id in (
            "%00",
            "secret%00",
            "not-a-uuid",
            "' OR '1'='1",
            "x" * 5000,
            missing.upper() + "0",
        ):
            for method, body in requests:
                reply = http.request(method, f"{path}/{bad_id}", json=body)
                expected = http.request(method, f"{path}/{missing}", json=body)
                assert (reply.status_code, reply.content) == (404, expected.content), (
                    method,
                    bad_id,
                )


# Row 10, the second line of defence: whatever engine or library raised it, an
# error's data (statement parameters, constraint DETAIL, pydantic input) is cut
# from the log line.
def test_the_log_formatter_cuts_the_data_errors_carry() -> None:
    class Note(BaseModel):
        count: int

    cause = Exception("refused\nDETAIL:  Key (email)=(plugh@example.com) already exists.")
    errors: list[Exception] = [ProgrammingError("INSERT …", {"content": "plugh"}, cause)]
    try:
        Note(count="plugh, input_type=x")  # type: ignore[arg-type]
    except ValidationError as invalid:
        errors.append(invalid)
    for error in errors:
        record = logging.LogRecord(
            "test", logging.ERROR, __file__, 1, "failed: %s", (error,), (type(error), error, None)
        )
        line = JsonFormatter().format(record)
        assert "plugh" not in line and "redacted" in line, line


def test_allowed_origins_get_cors_for_the_agent_api_without_cookies(
    server_database: str, tmp_path: Path
) -> None:
    """A browser app on an allowed origin (Agent Chat UI) may call the Agent
    Server API with a key and read the run ids; other origins get no CORS."""
    allowed = "http://chat-ui.example:3000"
    proc = ServerProcess(
        server_database, tmp_path / "cors.log", THREADLINE_ALLOWED_ORIGINS=f'["{allowed}"]'
    )
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            preflight = http.options(
                "/threads",
                headers={
                    "Origin": allowed,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "x-api-key, content-type",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == allowed
            assert "access-control-allow-credentials" not in preflight.headers
            reply = http.post("/threads/search", json={}, headers={"Origin": allowed})
            assert reply.status_code == 401  # no key: CORS lets it through, auth does not
            exposed = reply.headers["access-control-expose-headers"].lower()
            assert "content-location" in exposed and "location" in exposed
            other = http.options(
                "/threads",
                headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
            )
            assert other.headers.get("access-control-allow-origin") is None
    finally:
        proc.stop()
