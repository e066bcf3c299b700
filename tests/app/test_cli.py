"""The `threadline` command: clear start-up errors, and the terminal chat."""

from __future__ import annotations

import re

from tests.support.cli import threadline
from tests.support.server import free_port


def test_unreachable_database_is_one_clear_line_without_the_password() -> None:
    url = f"postgresql://alice:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    for command in ("migrate", "serve"):
        result = threadline(command, DATABASE_URL=url)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot reach the database")
        assert "s3cret-pw" not in result.stderr + result.stdout
        assert "alice:***@127.0.0.1" in lines[0]


def test_terminal_chat_resumes_a_thread_after_a_restart(server_database: str) -> None:
    first = threadline("chat", stdin="my name is Zed Shaw\n/quit\n", DATABASE_URL=server_database)
    assert first.returncode == 0, first.stderr
    match = re.search(r"--session ([0-9a-f-]{36})", first.stdout)
    assert match, first.stdout
    assert "offline model" in first.stdout
    again = threadline(
        "chat",
        "--session",
        match.group(1),
        stdin="what is my name?\n",
        DATABASE_URL=server_database,
    )
    assert again.returncode == 0, again.stderr
    assert "user> my name is Zed Shaw" in again.stdout  # the history is shown on resume
    assert "Your name is Zed Shaw" in again.stdout


def test_chat_with_an_unknown_session_fails_cleanly(server_database: str) -> None:
    result = threadline(
        "chat", "--session", "00000000-0000-0000-0000-000000000000", DATABASE_URL=server_database
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_serve_with_no_configuration_uses_the_embedded_database(tmp_path) -> None:
    """What `make run` does on a fresh machine: no DATABASE_URL, no API key."""
    import httpx

    from tests.support.server import ServerProcess

    env = {"THREADLINE_DATA_DIR": str(tmp_path / "data")}
    server = ServerProcess("", tmp_path / "serve.log", **env)
    server.env.pop("DATABASE_URL")
    server.start(timeout=90)
    try:
        health = httpx.get(f"{server.url}/api/health", timeout=10).json()
        assert (health["database"], health["model"]) == ("up", "offline")
        second = threadline("serve", "--port", str(free_port()), **env)
        assert second.returncode == 1
        assert "in use by another Threadline process" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
    finally:
        server.stop()
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()  # stopped cleanly
