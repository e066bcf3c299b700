"""Bad input at scale: schemathesis against the app's own OpenAPI (no 5xx, no
response that breaks the schema), and a hypothesis-driven WebSocket frame
fuzzer (the server stays up, every bad frame gets an `error` frame, stored
data unchanged). CI runs smaller counts; docs/reliability.md has the full ones."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from websockets.sync.client import ClientConnection, connect

from app.routes.ws_frames import ClientFrame
from tests.reliability.conftest import REPORTS
from tests.support.api import register
from tests.support.server import ServerProcess

SCHEMATHESIS_EXAMPLES = int(os.environ.get("THREADLINE_SCHEMATHESIS_EXAMPLES", "8"))
FUZZ_FRAMES = int(os.environ.get("THREADLINE_FUZZ_FRAMES", "400"))  # full run: 10,000
# Calls that end the token or the account the run is using, or that wait on files;
# and a thread's live stream, which never ends by itself (tests/app/test_agent_runs.py).
SKIPPED_PATHS = (
    "/api/auth/logout",
    "/api/auth/me",
    "/api/auth/password",
    "/threads/{thread_id}/stream",
)


def test_schemathesis_finds_no_server_errors(server: ServerProcess, tmp_path: Path) -> None:
    me = register(server)
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.url}/openapi.json",
        "-H",
        f"Authorization: {me['Authorization']}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(SCHEMATHESIS_EXAMPLES),
        "--seed",
        "1",
        "--no-color",
    ]
    for path in SKIPPED_PATHS:
        command += ["--exclude-path", path]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0 and counts, result.stdout[-4000:]
    generated = int(counts.group(1))
    assert generated == int(counts.group(2))
    report = {"requests": generated, "5xx": 0, "schema violations": 0}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "schemathesis.json").write_text(json.dumps(report, indent=2))
    print("schemathesis:", report)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
frame_types = st.sampled_from(["query", "resume", "cancel", "ping", "teleport", "", "QUERY"])
shaped = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    frame_types,
    st.dictionaries(
        st.sampled_from(["id", "content", "after_seq", "extra"]), json_values, max_size=3
    ),
)
frames = st.one_of(
    st.text(max_size=200),  # not JSON, mostly
    json_values.map(json.dumps),
    shaped.map(json.dumps),
)


def is_valid(frame: str) -> bool:
    try:
        ClientFrame.validate_json(frame)
    except ValidationError:
        return False
    return True


@pytest.fixture(scope="module")
def fuzz_target(
    server: ServerProcess, server_database: str
) -> Iterator[tuple[ClientConnection, str]]:
    created = httpx.post(f"{server.url}/api/sessions", json={}, timeout=10).json()
    headers = {"X-Anon-Token": created["anon_token"]}
    url = f"{server.ws_url}/ws/sessions/{created['id']}"
    # No keepalive pings: their thread draws each ping's payload from the global
    # `random`, and a draw while Hypothesis builds a frame fails the run
    # (HypothesisDeprecationWarning, an error here). The fuzzer's frames keep
    # the socket busy.
    with connect(url, additional_headers=headers, ping_interval=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session"
        yield ws, created["id"]


def stored(server_database: str, session_id: str) -> tuple[int, int]:
    """The session's message count and last seq."""
    with psycopg.connect(server_database) as conn:
        row = conn.execute(
            "SELECT message_count, last_seq FROM chat_sessions WHERE id = %s", (session_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_websocket_frame_fuzzer(
    fuzz_target: tuple[ClientConnection, str], server_database: str, server: ServerProcess
) -> None:
    ws, session_id = fuzz_target
    before = stored(server_database, session_id)
    sent: list[int] = []

    @settings(
        max_examples=FUZZ_FRAMES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(frame=frames)
    def send_one(frame: str) -> None:
        if is_valid(frame):
            return  # a well-formed frame is not bad input
        ws.send(frame)
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "error", (frame, reply)
        assert reply["code"] in {"invalid_frame", "invalid_input", "frame_too_large"}, reply
        sent.append(1)

    send_one()
    ws.send(json.dumps({"type": "ping"}))
    assert json.loads(ws.recv(timeout=10))["type"] == "pong"  # still up, same socket
    assert httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200
    assert stored(server_database, session_id) == before == (0, 0)  # bad frames stored nothing
    report = {"bad frames": len(sent), "error frames": len(sent), "server restarts": 0}
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "ws_fuzz.json").write_text(json.dumps(report, indent=2))
    print("websocket fuzzer:", report)
