"""Attacks on `POST /api/sessions/import`, each against a real server.

Every attack is answered with a 4xx JSON error (never a 5xx), the server keeps
answering `/api/health` meanwhile and stays small, and a refused file writes
nothing: no session and no message of the importing owner.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from app.auth import token_hash
from memory.import_reading import read_sessions
from memory.session_format import ImportLimits, UnreadableImport
from tests.support.chatgpt import conversation
from tests.support.identities import seed_messages, user_session
from tests.support.server import ServerProcess

MAX_MESSAGE_CHARS = 32_000  # the server's default max_message_chars, as on the socket
MAX_DEPTH = 32  # the server's default max_json_depth
JSON = "application/json"


# Who imports, and what they own afterwards


def anonymous(server: ServerProcess) -> tuple[dict[str, str], str]:
    """Headers of a new anonymous owner (the server issues the token, with a first
    session), and the token hash their rows carry."""
    reply = httpx.post(f"{server.url}/api/sessions", json={}, timeout=10)
    assert reply.status_code == 201, reply.text
    token = reply.json()["anon_token"]
    return {"X-Anon-Token": token}, token_hash(token)


def stored(database_url: str, *, anon_hash: str) -> int:
    """How many sessions and messages the anonymous owner has."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT s.id) + count(m.id) FROM chat_sessions s"
            " LEFT JOIN chat_messages m ON m.session_id = s.id"
            " WHERE s.user_id IS NULL AND s.anon_token_hash = %s",
            (anon_hash,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def post_import(
    server: ServerProcess,
    body: bytes,
    headers: dict[str, str],
    content_type: str | None = JSON,
    timeout: float = 60,
) -> httpx.Response:
    sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
    return httpx.post(
        f"{server.url}/api/sessions/import", content=body, headers=sent, timeout=timeout
    )


def refused(reply: httpx.Response, status: int = 422) -> str:
    """The reply is the expected JSON error; returns its message."""
    assert reply.status_code == status, reply.text[:500]
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert error["code"] and error["message"] and "Traceback" not in error["message"]
    return str(error["message"])


# Files


def export(session_id: str, messages: list[dict[str, Any]], **session: Any) -> bytes:
    """A Threadline export, shaped as the server writes one."""
    return json.dumps(
        {
            "format": "threadline.session",
            "version": 1,
            "session": {"id": session_id, "title": "imported", **session},
            "messages": messages,
        }
    ).encode()


def message(content: str = "hello", **fields: Any) -> dict[str, Any]:
    return {
        "id": f"m-{uuid.uuid4().hex}",
        "role": "user",
        "content": content,
        "created_at": "2026-01-02T03:04:05+00:00",
        **fields,
    }


# Watching the server while it works


class HealthWatch:
    """Polls `/api/health` back to back from a thread while the block runs (and
    once after it), recording how long each answer took and how long the block ran.

    A server that does the work on its event loop answers nothing until the work
    is done: its slowest answer is as long as the block. So the bound is relative
    to the block (at most half of it), with a floor for blocks too short to tell."""

    def __init__(self, server: ServerProcess) -> None:
        self.url = f"{server.url}/api/health"
        self.took: list[float] = []
        self.statuses: list[int] = []
        self._started = self.ran = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthWatch:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.ran = time.monotonic() - self._started
        self._stop.set()
        self._thread.join(30)

    @property
    def slowest(self) -> float:
        return max(self.took)

    def _poll(self) -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                last = self._stop.is_set()
                started = time.monotonic()
                try:
                    self.statuses.append(client.get(self.url).status_code)
                except httpx.HTTPError:
                    self.statuses.append(0)
                self.took.append(time.monotonic() - started)
                if last:
                    return

    def assert_healthy(self, floor: float = 1.0) -> None:
        assert self.statuses and set(self.statuses) == {200}, self.statuses
        bound = max(floor, self.ran / 2)
        assert self.slowest < bound, (
            f"health took {self.slowest:.2f}s during an import of {self.ran:.2f}s"
        )


@contextmanager
def peak_memory_growth(pid: int) -> Iterator[list[int]]:
    """The growth of the process's peak RSS over the block, in bytes: the kernel's
    high-water mark is reset first, so a short spike counts as much as a lasting one."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM)
    before = psutil.Process(pid).memory_info().rss
    growth: list[int] = []
    yield growth
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line[:6] == "VmHWM:")
    growth.append(peak_kb * 1024 - before)


# A server of this module's own: its memory is watched with nothing else running
# in it; its message limit is raised far enough to reach PostgreSQL's own limits,
# and its session limit lowered, so a refused flood costs little to show.
TUNED_MAX_SESSIONS = 50


@pytest.fixture(scope="module")
def tuned_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        server_database,
        tmp_path_factory.mktemp("tuned") / "server.log",
        THREADLINE_MAX_MESSAGE_CHARS="4000000",
        THREADLINE_MAX_IMPORT_SESSIONS=str(TUNED_MAX_SESSIONS),
    )
    proc.start()
    yield proc
    proc.stop()


# Attack 1: deep nesting


MEMORY_BOUND = 200 * 2**20  # what one refused import may add to the server's peak RSS


def test_deeply_nested_json_is_refused_at_the_depth_limit(
    tuned_server: ServerProcess, server_database: str
) -> None:
    """Without a depth bound the old parser's memory grew with the square of the
    depth: 16,000 `[` (16 KB) cost it ~600 MB, the attack's 200 KB tens of GB. The
    sizes here show that growth without exhausting the test machine."""
    server = tuned_server
    assert server.proc is not None
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    too_deep = [
        b"[" * 16_000,
        b'{"a":' * 20_000,
        export(str(uuid.uuid4()), [message(tools_used=[json.loads("[" * 40 + "]" * 40)])]),
        json.dumps([conversation(0, ["hi"], extra=json.loads("[" * 40 + "]" * 40))]).encode(),
    ]
    for body in too_deep:
        with HealthWatch(server) as health, peak_memory_growth(server.proc.pid) as grew:
            reply = post_import(server, body, headers)
        assert grew[0] < MEMORY_BOUND, f"peak RSS grew by {grew[0] / 2**20:.0f} MB"
        health.assert_healthy()
        assert f"deeper than {MAX_DEPTH} levels" in refused(reply)
    assert stored(server_database, anon_hash=anon_hash) == before
    # Nesting within the bound is fine: depth 32 counts every level, the file's own too.
    inside = json.loads("[" * 27 + "]" * 27)
    within = export(str(uuid.uuid4()), [message(tools_used=inside)])
    fine = post_import(server, within, headers)
    assert fine.status_code == 201, fine.text


# Attack 7: too many sessions, overlong messages, a large file


def test_too_many_sessions_in_one_import_are_refused(
    tuned_server: ServerProcess, server_database: str
) -> None:
    """100,000 conversations in one anonymous request: refused at the server's
    limit, nothing written. (The sessions before the limit are written, then
    rolled back: one import's worth of work at most.)"""
    server = tuned_server
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    tiny = [{"id": f"c{i}", "title": "x", "mapping": {}} for i in range(100_000)]
    with HealthWatch(server) as health:
        reply = post_import(server, json.dumps(tiny).encode(), headers)
    assert f"more than {TUNED_MAX_SESSIONS} conversations" in refused(reply)
    health.assert_healthy()
    assert stored(server_database, anon_hash=anon_hash) == before


def test_the_session_limit_counts_exactly() -> None:
    """The file is refused at the conversation past the limit, before reading it."""
    three = ImportLimits(max_sessions=3)
    files = [json.dumps([conversation(i, ["hi"]) for i in range(n)]).encode() for n in (3, 4)]
    assert len(list(read_sessions(io.BytesIO(files[0]), "scope", three))) == 3
    with pytest.raises(UnreadableImport, match="more than 3 conversations"):
        list(read_sessions(io.BytesIO(files[1]), "scope", three))


def test_imported_messages_are_capped_like_the_socket(
    server: ServerProcess, server_database: str
) -> None:
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    long = "x" * (MAX_MESSAGE_CHARS + 1)
    for body in (
        export(str(uuid.uuid4()), [message("fine"), message(long)]),
        export(str(uuid.uuid4()), [message(role="assistant", error_message=long)]),
        json.dumps([conversation(0, ["fine"]), conversation(1, ["fine", long])]).encode(),
    ):
        assert f"longer than {MAX_MESSAGE_CHARS} characters" in refused(
            post_import(server, body, headers)
        )
    assert stored(server_database, anon_hash=anon_hash) == before
    # At the limit it is accepted, and a long title is cut to the title limit.
    at_limit = export(str(uuid.uuid4()), [message("y" * MAX_MESSAGE_CHARS)], title="t" * 100_000)
    reply = post_import(server, at_limit, headers)
    assert reply.status_code == 201, reply.text
    session_id = reply.json()["sessions"][0]
    shown = httpx.get(f"{server.url}/api/sessions/{session_id}", headers=headers, timeout=10)
    assert shown.status_code == 200 and len(shown.json()["title"]) <= 200


def test_large_import_leaves_the_server_answering(
    server: ServerProcess, server_database: str
) -> None:
    """One ~30 MB conversation (the old server built it on its event loop, for
    seconds), refused at its last message: health answers throughout."""
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    mapping: dict[str, Any] = {"root": {"id": "root", "message": None, "parent": None}}
    parent = "root"
    for n in range(50_000):
        mapping[f"n{n}"] = {
            "id": f"n{n}",
            "parent": parent,
            "children": [f"n{n + 1}"],
            "message": {
                "id": f"m{n}",
                "author": {"role": "tool", "name": "browser", "metadata": {}},
                "create_time": 1714000000.5 + n,
                "content": {"content_type": "text", "parts": ["a tool's output " * 22]},
                "metadata": {"finish_details": {"type": "stop"}, "weight": 1.0},
            },
        }
        parent = f"n{n}"
    last = {"id": "bad", "author": {"role": "user"}, "content": {"parts": ["a\x00b"]}}
    mapping["last"] = {"id": "last", "parent": parent, "message": last}
    body = json.dumps([{"id": "c", "current_node": "last", "mapping": mapping}]).encode()
    assert len(body) > 30 * 2**20
    with HealthWatch(server) as health:
        reply = post_import(server, body, headers)
    assert len(health.took) >= 3  # polled while the import ran, not only after it
    health.assert_healthy()
    assert "NUL" in refused(reply)
    assert stored(server_database, anon_hash=anon_hash) == before


# Attack 9: malformed fields


BAD_MESSAGES: list[tuple[str, dict[str, Any]]] = [
    ("error_message", {"error_message": {}}),
    ("error_message", {"error_message": ["a list"]}),
    ("error_message", {"error_message": "a\x00b"}),
    ("content", {"content": "a\x00b"}),
    ("content", {"content": {"text": "hi"}}),
    ("id", {"id": "a\x00b"}),
    ("id", {"id": "ends-with-newline\n"}),
    ("role", {"role": "user\x00"}),
    ("role", {"role": ["user"]}),
    ("created_at", {"created_at": "2026-01-02\x00"}),
    ("created_at", {"created_at": {}}),
    ("created_at", {"created_at": True}),
    ("created_at", {"created_at": 1e300}),
    ("processing_time_ms", {"processing_time_ms": "abc"}),
    ("processing_time_ms", {"processing_time_ms": 2**40}),
    ("processing_time_ms", {"processing_time_ms": -1}),
    ("processing_time_ms", {"processing_time_ms": 1.5}),
    ("processing_time_ms", {"processing_time_ms": True}),
    ("token_count", {"token_count": 2**31}),
    ("token_count", {"token_count": -5}),
    ("token_count", {"token_count": "7"}),
    ("tools_used", {"tools_used": ["a\x00"]}),
    ("tools_used", {"tools_used": "search"}),
    ("tools_used", {"tools_used": {"name": "search"}}),
    ("tools_used", {"tools_used": [{"name\x00": "search"}]}),
    ("tools_used", {"tools_used": [{"name": "search", "args": {"q": ["x\x00"]}}]}),
    ("tools_used", {"tools_used": [{"name": "search"}] * 1000}),
    ("has_error", {"has_error": "yes"}),
    ("has_error", {"has_error": 1}),
]


@pytest.mark.parametrize(
    ("field", "bad"),
    BAD_MESSAGES,
    ids=[f"{field}-{n}" for n, (field, _) in enumerate(BAD_MESSAGES)],
)
def test_malformed_message_fields_are_422_and_write_nothing(
    server: ServerProcess, server_database: str, field: str, bad: dict[str, Any]
) -> None:
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    body = export(str(uuid.uuid4()), [message("a good one first"), message(**bad)])
    assert field in refused(post_import(server, body, headers))
    assert stored(server_database, anon_hash=anon_hash) == before


@pytest.mark.parametrize(
    "body",
    [
        export(str(uuid.uuid4()), [message()], title="a\x00b"),
        export(str(uuid.uuid4()), [message()], title=["a list"]),
        export(str(uuid.uuid4()), [message()], created_at="yesterday"),
        json.dumps([conversation(0, ["hi"], title="a\x00b")]).encode(),
        json.dumps([conversation(0, ["a\x00b"])]).encode(),
        json.dumps(
            [{"current_node": "n", "mapping": {"n": {"message": {"author": "me", "content": []}}}}]
        ).encode(),
        json.dumps([conversation(0, ["hi"], create_time="never")]).encode(),
        '["\udbff"]'.encode("utf-8", "surrogatepass"),
    ],
    ids=[
        "title-nul",
        "title-list",
        "session-created_at",
        "chatgpt-title-nul",
        "chatgpt-text-nul",
        "chatgpt-odd-shapes",
        "chatgpt-create_time",
        "encoded-surrogate",
    ],
)
def test_malformed_sessions_are_422_and_write_nothing(
    server: ServerProcess, server_database: str, body: bytes
) -> None:
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    refused(post_import(server, body, headers))
    assert stored(server_database, anon_hash=anon_hash) == before


def test_text_too_long_for_the_search_index_is_422_not_503(
    tuned_server: ServerProcess, server_database: str
) -> None:
    """Over 1 MB of distinct words passes no index (PostgreSQL's tsvector limit,
    SQLSTATE 54000): that is the file's fault, not an outage. Reachable only with
    the message limit raised that far, as this server has it."""
    server = tuned_server
    words = " ".join(f"w{n:07x}" for n in range(150_000))
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    body = export(str(uuid.uuid4()), [message("fine"), message(words)])
    assert "too large" in refused(post_import(server, body, headers))
    assert stored(server_database, anon_hash=anon_hash) == before
    assert httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200


# Attack 11: someone else's ids


async def test_someone_elses_ids_import_as_new_and_reveal_nothing(
    server: ServerProcess, server_database: str
) -> None:
    victim_session, victim = await user_session(server_database)
    await seed_messages(server_database, victim_session, ["victim's secret", "an answer"])
    with psycopg.connect(server_database) as conn:
        victim_messages = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM chat_messages WHERE session_id = %s ORDER BY seq",
                (victim_session,),
            )
        ]
    headers, anon_hash = anonymous(server)
    theirs = export(victim_session, [message("planted", id=victim_messages[0])])
    unknown = export(str(uuid.uuid4()), [message("planted", id=f"m-{uuid.uuid4().hex}")])
    replies = [post_import(server, body, headers) for body in (theirs, unknown)]
    shapes = [
        (r.status_code, r.json()["sessions_created"], r.json()["messages_added"]) for r in replies
    ]
    assert shapes[0] == shapes[1] == (201, 1, 1), [r.text for r in replies]
    planted = replies[0].json()["sessions"][0]
    assert planted != victim_session
    # Only a message id of theirs, in a session of the importer's own: the same.
    only_message = export(str(uuid.uuid4()), [message("again", id=victim_messages[1])])
    reply = post_import(server, only_message, headers)
    assert reply.status_code == 201 and reply.json()["messages_added"] == 1, reply.text
    # The victim's thread is untouched and still not the importer's.
    url = f"{server.url}/api/sessions/{victim_session}"
    assert httpx.get(url, headers=headers, timeout=10).status_code == 404
    mine = httpx.get(f"{url}/messages", headers=victim, timeout=10).json()["messages"]
    assert [m["content"] for m in mine] == ["victim's secret", "an answer"]
    # The importer's copy holds what they imported, and importing again adds nothing.
    copy = httpx.get(f"{server.url}/api/sessions/{planted}/messages", headers=headers, timeout=10)
    assert [m["content"] for m in copy.json()["messages"]] == ["planted"]
    before = stored(server_database, anon_hash=anon_hash)
    for body in (theirs, only_message):
        again = post_import(server, body, headers)
        assert again.status_code == 201 and again.json()["messages_added"] == 0, again.text
        assert again.json()["sessions_created"] == 0
    assert stored(server_database, anon_hash=anon_hash) == before


# Row 6 (part): only JSON, so a cross-site form cannot plant a conversation


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        None,
    ],
)
def test_import_accepts_only_json(
    server: ServerProcess, server_database: str, content_type: str | None
) -> None:
    headers, anon_hash = anonymous(server)
    before = stored(server_database, anon_hash=anon_hash)
    body = export(str(uuid.uuid4()), [message("planted by a cross-site form")])
    reply = post_import(server, body, headers, content_type=content_type)
    assert "application/json" in refused(reply, 415)
    assert stored(server_database, anon_hash=anon_hash) == before
    ok = post_import(server, body, headers, content_type="application/json; charset=utf-8")
    assert ok.status_code == 201, ok.text
