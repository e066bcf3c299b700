"""Operator commands and their REST twins: import, export, merge, cleanup."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import psycopg

from tests.support.api import register
from tests.support.cli import threadline
from tests.support.identities import anonymous_session
from tests.support.server import ServerProcess

CHATGPT = Path(__file__).parent.parent / "data" / "chatgpt_conversations.json"


def test_cli_users_import_list_show_export_merge(server_database: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": server_database}
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    created = threadline("users", "create", email, "--password", "long enough pw", **env)
    assert created.returncode == 0, created.stderr
    assert email in threadline("users", "list", **env).stdout
    first = threadline("sessions", "import", str(CHATGPT), "--user", email, **env)
    assert first.returncode == 0 and "3 messages added" in first.stdout, first.stderr
    again = threadline("sessions", "import", str(CHATGPT), "--user", email, **env)
    assert "0 messages added, 3 already there" in again.stdout
    listed = json.loads(threadline("sessions", "list", "--user", email, "--json", **env).stdout)
    by_title = {s["title"]: s for s in listed}
    seoul, empty = by_title["Trip to Seoul"]["id"], by_title["Empty chat"]["id"]
    shown = threadline("sessions", "show", seoul, "--user", email, **env)
    assert "서울에서 3일 동안" in shown.stdout
    out = tmp_path / "seoul.json"
    exported = threadline("sessions", "export", seoul, "--user", email, "-o", str(out), **env)
    assert exported.returncode == 0 and json.loads(out.read_text())["session"]["id"] == seoul
    merged = threadline("sessions", "merge", seoul, empty, "--user", email, **env)
    assert merged.returncode == 0 and "3 messages" in merged.stdout, merged.stderr
    assert (
        len(json.loads(threadline("sessions", "list", "--user", email, "--json", **env).stdout))
        == 1
    )


def test_cli_bad_input_fails_cleanly_and_writes_nothing(
    server_database: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": server_database}
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    threadline("users", "create", email, "--password", "long enough pw", **env)
    broken = tmp_path / "broken.json"
    broken.write_bytes(CHATGPT.read_bytes()[:-40])  # truncated mid-file
    cases = [
        ("sessions", "import", str(CHATGPT), "--user", "nobody@example.com"),
        ("sessions", "import", str(broken), "--user", email),
        ("sessions", "import", "/etc/hostname", "--user", email),
        ("sessions", "show", str(uuid.uuid4()), "--user", email),
        ("sessions", "merge", str(uuid.uuid4()), str(uuid.uuid4()), "--user", email),
        ("users", "create", email, "--password", "long enough pw"),
        ("users", "create", "x@example.com", "--password", "short"),
    ]
    for args in cases:
        result = threadline(*args, **env)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr, args
    listed = threadline("sessions", "list", "--user", email, "--json", **env)
    assert json.loads(listed.stdout) == []  # the truncated file wrote nothing


def test_cli_cleanup_dry_run_then_for_real(server_database: str) -> None:
    env = {"DATABASE_URL": server_database}
    expired = str(uuid.uuid4())
    with psycopg.connect(server_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO chat_sessions (id, anon_token_hash, expires_at)"
            " VALUES (%s, 'x', now() - interval '1 hour')",
            (expired,),
        )
    dry = threadline("sessions", "cleanup", "--dry-run", **env)
    assert expired in dry.stdout
    with psycopg.connect(server_database) as conn:
        assert conn.execute("SELECT 1 FROM chat_sessions WHERE id = %s", (expired,)).fetchone()
    real = threadline("sessions", "cleanup", **env)
    assert real.returncode == 0 and "deleted" in real.stdout
    with psycopg.connect(server_database) as conn:
        assert (
            conn.execute("SELECT 1 FROM chat_sessions WHERE id = %s", (expired,)).fetchone() is None
        )


async def test_rest_import_and_merge(server: ServerProcess, server_database: str) -> None:
    me = {**register(server), "Content-Type": "application/json"}
    url = f"{server.url}/api/sessions/import"
    body = CHATGPT.read_bytes()
    first = httpx.post(url, content=body, headers=me, timeout=30)
    assert first.status_code == 201 and first.json()["messages_added"] == 3, first.text
    again = httpx.post(url, content=body, headers=me, timeout=30)
    assert again.json()["messages_added"] == 0
    for bad in (b"{not json", b'{"format": "threadline.session", "version": 9}', body[:-30]):
        refused = httpx.post(url, content=bad, headers=me, timeout=30)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_import"
    a, b = first.json()["sessions"]
    merge = f"{server.url}/api/sessions/{a}/merge"
    assert httpx.post(merge, json={"other_id": a}, headers=me, timeout=10).status_code == 422
    stranger_id, _ = await anonymous_session(server_database)
    assert (
        httpx.post(merge, json={"other_id": stranger_id}, headers=me, timeout=10).status_code == 404
    )
    done = httpx.post(merge, json={"other_id": b}, headers=me, timeout=10)
    assert done.status_code == 200 and done.json()["message_count"] == 3
    assert httpx.get(f"{server.url}/api/sessions/{b}", headers=me, timeout=10).status_code == 404


def test_serve_cleans_up_expired_sessions_periodically(
    server_database: str, tmp_path: Path
) -> None:
    import time

    expired = str(uuid.uuid4())
    with psycopg.connect(server_database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO chat_sessions (id, anon_token_hash, expires_at)"
            " VALUES (%s, 'x', now() - interval '1 minute')",
            (expired,),
        )
    server = ServerProcess(server_database, tmp_path / "log", THREADLINE_CLEANUP_INTERVAL_S="0.3")
    server.start()
    try:
        deadline = time.monotonic() + 15
        with psycopg.connect(server_database, autocommit=True) as conn:
            while conn.execute("SELECT 1 FROM chat_sessions WHERE id = %s", (expired,)).fetchone():
                assert time.monotonic() < deadline, "the expired session was never cleaned up"
                time.sleep(0.2)
    finally:
        server.stop()
