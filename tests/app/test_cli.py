"""The `threadline` command: clear start-up errors, and the terminal chat."""

from __future__ import annotations

import re
import uuid

import httpx
import psycopg

from tests.support.cli import one_line_error, threadline
from tests.support.openai_stub import openai_stub
from tests.support.server import ServerProcess, free_port


def test_unreachable_database_is_one_clear_line_without_the_password() -> None:
    url = f"postgresql://alice:s3cret-pw@127.0.0.1:{free_port()}/nowhere"
    for command in ("migrate", "serve"):
        result = threadline(command, DATABASE_URL=url)
        assert result.returncode == 1
        line = one_line_error(result)
        assert line.startswith("error: cannot reach the database")
        assert "s3cret-pw" not in result.stderr + result.stdout
        assert "alice:***@127.0.0.1" in line


def test_a_bad_setting_is_one_clear_line_naming_the_variable_not_its_value() -> None:
    for command in (["migrate"], ["serve"], ["sessions", "list"]):
        result = threadline(*command, THREADLINE_PORT="s3cret", DATABASE_URL="postgresql://x/y")
        assert one_line_error(result) == (
            "error: bad setting: THREADLINE_PORT: "
            "Input should be a valid integer, unable to parse string as an integer"
        ), command
        assert result.returncode == 2 and "s3cret" not in result.stderr + result.stdout


def test_terminal_chat_resumes_a_thread_after_a_restart(server_database: str) -> None:
    first = threadline("chat", stdin="my name is Zed Shaw\n/quit\n", DATABASE_URL=server_database)
    assert first.returncode == 0, first.stderr
    match = re.search(r"--session ([0-9a-f-]{36})", first.stdout)
    assert match, first.stdout
    assert "deleted 24 h after its last message" in first.stdout  # a visitor's session
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


def test_terminal_chat_commands_are_not_sent_as_questions(server_database: str) -> None:
    typed = "/help\n/hlep\n/retry\n/etc/hosts is what?\n/quit\nnot asked\n"
    result = threadline("chat", stdin=typed, DATABASE_URL=server_database)
    assert result.returncode == 0, result.stderr
    assert "/retry  ask the last question again" in result.stdout  # /help
    assert "(no command /hlep; /help lists them)" in result.stdout
    assert "(nothing to retry: the last question has its answer)" in result.stdout
    # only the question that looks like a path was asked, and /quit ended it
    assert result.stdout.count("assistant> ") == 1 and "/etc/hosts is what?" in result.stdout
    assert "not asked" not in result.stdout


def test_chat_with_an_unknown_session_fails_cleanly(server_database: str) -> None:
    for session in ("00000000-0000-0000-0000-000000000000", "not-an-id"):
        result = threadline("chat", "--session", session, DATABASE_URL=server_database)
        assert one_line_error(result) == (
            f"error: not_found: no session {session} of this terminal (or it expired)"
        )


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
        assert "in use by another Threadline server" in one_line_error(second)
        assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
    finally:
        server.stop()
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()  # stopped cleanly


def test_api_keys_from_the_command_line(server: ServerProcess, server_database: str) -> None:
    """Made, listed and revoked by `threadline users api-key`; the key works
    against the running server as x-api-key until revoked."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    env = {"DATABASE_URL": server_database}
    made = threadline("users", "create", email, "--password", "correct horse battery", **env)
    assert made.returncode == 0, made.stderr
    created = threadline("users", "api-key", "create", email, "--name", "script", **env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.splitlines()[0]
    assert key.startswith("tl_")
    search = f"{server.url}/threads/search"
    assert httpx.post(search, json={}, headers={"x-api-key": key}, timeout=10).status_code == 200
    listed = threadline("users", "api-key", "list", email, **env)
    [line] = listed.stdout.splitlines()
    key_id = line.split()[0]
    assert f"script  {key[:10]}…" in line and key not in listed.stdout
    assert threadline("users", "api-key", "revoke", email, key_id, **env).returncode == 0
    assert httpx.post(search, json={}, headers={"x-api-key": key}, timeout=10).status_code == 401
    again = threadline("users", "api-key", "revoke", email, key_id, **env)
    assert one_line_error(again).startswith("error: not_found")
    nobody = threadline("users", "api-key", "list", "nobody@example.com", **env)
    assert one_line_error(nobody).startswith("error: unknown_user")


async def test_memories_reembed_fills_what_is_owed(vector_url: str, server_database: str) -> None:
    """After a change of model (or memories saved while embeddings were off),
    `threadline memories reembed` embeds them; on a database without pgvector
    it says recall is by full text."""
    from memory.db import open_database
    from memory.embeddings import LocalEmbedder
    from memory.memories import MemoryDraft, MemoryStore
    from tests.support.database import truncate_all
    from tests.support.users import create_user

    truncate_all(vector_url)  # the vector database is shared with tests/memory/test_vectors.py
    db = await open_database(vector_url, pool_size=2)
    try:
        user = await create_user(db, f"{uuid.uuid4().hex[:8]}@example.com")
        store = MemoryStore(db)  # no vectors: saved without embeddings, owed
        for text in ("User said: I live in Tromsø", "User said: my doctor is Dr. Hansen"):
            await store.add(user, MemoryDraft("fact", None, text))
        result = threadline("memories", "reembed", DATABASE_URL=vector_url)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().startswith("embedded 2 memories with")
        async with db.engine.connect() as conn:
            from sqlalchemy import text

            models = await conn.execute(
                text("SELECT embedding_model FROM memories WHERE user_id = :u"), {"u": user}
            )
            assert {row[0] for row in models} == {LocalEmbedder.model}
    finally:
        await db.close()
    plain = threadline("memories", "mode", DATABASE_URL=server_database)
    assert plain.stdout.strip() == "full_text"


def test_terminal_chat_retries_a_question_left_unanswered(server_database: str) -> None:
    """A model failure leaves the question unanswered; reopened, the thread says so
    and /retry asks it again under its own id: one question, one answer."""
    with openai_stub() as stub:
        model = stub.server_env(THREADLINE_MODEL_MAX_RETRIES="0", DATABASE_URL=server_database)
        stub.fail(500)
        first = threadline("chat", stdin="what is a tern?\n/quit\n", **model)
        assert "[model_unavailable]" in first.stdout, first.stdout + first.stderr
        session = re.search(r"--session ([0-9a-f-]{36})", first.stdout)
        assert session, first.stdout
        stub.recover()
        again = threadline("chat", "--session", session.group(1), stdin="/retry\n", **model)
    assert again.returncode == 0, again.stderr
    assert "(not answered" in again.stdout
    assert "stub says: what is a tern?" in again.stdout
    with psycopg.connect(server_database) as conn:
        rows = conn.execute(
            "SELECT role FROM chat_messages WHERE session_id = %s ORDER BY seq", (session.group(1),)
        ).fetchall()
    assert [role for (role,) in rows] == ["user", "assistant"]
