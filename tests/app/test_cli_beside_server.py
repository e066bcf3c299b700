"""The CLI and MCP beside a running `threadline serve` on the zero-config default:
the embedded PostgreSQL under a data directory, no DATABASE_URL. They join the
server's cluster instead of refusing it; every error is one line and a non-zero
exit; and the cluster stops only when the last process using it leaves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from app.cli import main
from tests.support.cli import BOX_DRAWING, cli_env, one_line_error
from tests.support.server import ROOT, ServerProcess, free_port

PASSWORD = "correct horse battery"
NO_SESSION = "00000000-0000-0000-0000-000000000000"


class Embedded:
    """A server on the embedded default, and how to run the CLI beside it."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.env = cli_env(THREADLINE_DATA_DIR=str(data_dir))
        self.env.pop("DATABASE_URL", None)
        self.server = ServerProcess("", log, THREADLINE_DATA_DIR=str(data_dir))
        self.server.env.pop("DATABASE_URL")

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def healthy(self) -> bool:
        return httpx.get(f"{self.server.url}/api/health", timeout=10).status_code == 200

    def login(self, email: str) -> dict[str, str]:
        reply = httpx.post(
            f"{self.server.url}/api/auth/login",
            json={"email": email, "password": PASSWORD},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['token']}"}


def postmaster_running(data_dir: Path) -> bool:
    return (data_dir / "pgdata" / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    scratch = tmp_path_factory.mktemp("beside")
    setup = Embedded(scratch / "data", scratch / "server.log")
    setup.server.start(timeout=120)  # initdb on the first start
    yield setup
    setup.server.stop()
    assert not postmaster_running(setup.data_dir)  # the last one out stopped it


def new_email() -> str:
    return f"{uuid.uuid4().hex[:10]}@example.com"


def test_cli_commands_share_the_running_servers_database(embedded: Embedded) -> None:
    email = new_email()
    created = embedded.run("users", "create", email, "--password", PASSWORD, "--name", "Ada")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created {email}")
    assert email in embedded.run("users", "list").stdout
    headers = embedded.login(email)  # the server sees the account the CLI made

    chat = embedded.run("chat", "--user", email, stdin="my name is Ada Lovelace\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert f"resume with: threadline chat --user {email} --session" in chat.stdout
    assert "Ada Lovelace" in chat.stdout
    listed = embedded.run("sessions", "list", "--user", email, "--json")
    assert listed.returncode == 0, listed.stderr
    (session,) = json.loads(listed.stdout)
    over_rest = httpx.get(f"{embedded.server.url}/api/sessions", headers=headers, timeout=10)
    assert [s["id"] for s in over_rest.json()["sessions"]] == [session["id"]]
    exported = embedded.run("sessions", "export", session["id"], "--user", email)
    assert json.loads(exported.stdout)["messages"][0]["content"] == "my name is Ada Lovelace"
    assert embedded.healthy()
    assert postmaster_running(embedded.data_dir)  # the CLI left; the server's cluster stays


def test_every_cli_error_is_one_line_and_a_non_zero_exit(
    embedded: Embedded,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the console script's own entry point, in this process (a child per
    case would spend most of its time importing); the next test runs real ones."""
    email = new_email()
    assert embedded.run("users", "create", email, "--password", PASSWORD).returncode == 0
    other = embedded.run("chat", stdin="/quit\n")  # the terminal's session, not the user's
    found = re.search(r"--session ([0-9a-f-]{36})", other.stdout)
    assert found, other.stdout + other.stderr
    terminal_session = found.group(1)
    truncated = tmp_path / "truncated.json"
    truncated.write_text('[{"title": "x", "mapping": {"a": {"message": ', encoding="utf-8")
    cases: list[tuple[list[str], str]] = [
        (["users", "create", "notanemail", "--password", PASSWORD], "email: not an email"),
        (["users", "create", new_email(), "--password", "short"], "at least 8 characters"),
        (["users", "create", new_email(), "--password", "password123"], "most common"),
        (["users", "create", email.upper(), "--password", PASSWORD], "email_taken"),
        (["users", "create", new_email()], "no password"),  # no terminal to ask in
        (["users", "create"], "Missing argument"),
        (["sessions", "list", "--user", "nobody@example.com"], "unknown_user"),
        (["sessions", "show", "not-an-id"], "not_found"),
        (["sessions", "export", terminal_session, "--user", email], "not_found"),
        (["sessions", "export", NO_SESSION, "--format", "pdf"], "must be json or md"),
        (["sessions", "export", terminal_session, "-o", str(tmp_path)], "cannot write"),
        (["sessions", "import", str(tmp_path / "missing.json")], "No such file"),
        (["sessions", "import", str(tmp_path)], "Is a directory"),
        (["sessions", "import", str(truncated)], "invalid_import"),
        (["sessions", "merge", terminal_session, terminal_session], "error: "),
        (["sessions", "lst"], "No such command"),
        (["chat", "--session", "not-an-id"], "not_found"),
        (["chat", "--session", NO_SESSION, "--user", email], "not_found"),
        (["chat", "--user", "nobody@example.com"], "unknown_user"),
        (["mcp", "--user", "nobody@example.com"], "unknown_user"),
        (["serve", "--port", "abc"], "--port"),  # a second server: in the next test
        (["serve", "--port", "70000"], "--port"),
        (["sessions", "list", "--limit", "0"], "--limit"),
    ]
    for key in [k for k in embedded.env if k.startswith("THREADLINE_")]:
        monkeypatch.setenv(key, embedded.env[key])
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for args, expected in cases:
        monkeypatch.setattr(sys, "argv", ["threadline", *args])
        with pytest.raises(SystemExit) as exit:
            main()
        captured = capsys.readouterr()
        code = exit.value.code if isinstance(exit.value.code, int) else 1
        result = subprocess.CompletedProcess(args, code, captured.out, captured.err)
        assert expected in one_line_error(result), args
    assert embedded.healthy()


def test_errors_of_real_processes_are_one_line(embedded: Embedded, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.json"
    truncated.write_text('{"format": "threadline.session", "version": 1, "sess', "utf-8")
    cases: list[tuple[list[str], str]] = [
        (["users", "create", "notanemail", "--password", PASSWORD], "email: not an email"),
        (["sessions", "import", str(truncated)], "invalid_import"),
        (["chat", "--session", NO_SESSION], "not_found"),
        (["mcp", "--user", "nobody@example.com"], "unknown_user"),
        (["serve", "--port", str(free_port())], "in use by another Threadline server"),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda case: embedded.run(*case[0]), cases))
    for (args, expected), result in zip(cases, results, strict=True):
        assert expected in one_line_error(result), args
    assert embedded.healthy()


def tool_answer(result: Any) -> Any:
    assert not result.is_error, result.content
    structured = result.structured_content
    if isinstance(structured, dict) and set(structured) == {"result"}:
        return structured["result"]
    return structured


async def test_mcp_serves_beside_the_server_and_refuses_bad_ids_cleanly(
    embedded: Embedded, tmp_path: Path
) -> None:
    email = new_email()
    assert embedded.run("users", "create", email, "--password", PASSWORD).returncode == 0
    session = httpx.post(
        f"{embedded.server.url}/api/sessions",
        json={"title": "planning"},
        headers=embedded.login(email),
        timeout=10,
    ).json()
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app", "mcp", "--user", email],
        cwd=str(ROOT),
        env=embedded.env,
    )
    stderr = tmp_path / "mcp.stderr"
    with stderr.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as mcp,
        ):
            await mcp.initialize()
            listed = tool_answer(await mcp.call_tool("list_sessions", {"limit": -5}))
            assert [s["id"] for s in listed] == [session["id"]]
            for tool, args in [
                ("resume_session", {"session_id": NO_SESSION}),
                ("resume_session", {"session_id": "not-a-uuid"}),
                ("resume_session", {"session_id": "x" * 10_000}),
                ("export_session", {"session_id": ""}),
                ("merge_sessions", {"session_id": session["id"], "other_id": NO_SESSION}),
            ]:
                refused = await mcp.call_tool(tool, args)
                assert refused.is_error, (tool, args)
                text = refused.content[0].text
                assert text.endswith("not_found: session not found"), text
    logged = stderr.read_text()
    assert "Traceback" not in logged and not set(BOX_DRAWING) & set(logged), logged
    assert embedded.healthy()


def test_a_server_started_beside_a_terminal_chat_outlives_it(tmp_path: Path) -> None:
    """The reverse: the chat starts the cluster, the server joins it; the chat's exit
    leaves it to the server, and the server's stop ends it."""
    setup = Embedded(tmp_path / "data", tmp_path / "server.log")
    chat = subprocess.Popen(
        [sys.executable, "-m", "app", "chat"],
        cwd=ROOT,
        env=setup.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert chat.stdout is not None and chat.stdin is not None
        assert chat.stdout.readline().startswith("session ")  # the chat holds the cluster
        setup.server.start(timeout=120)
        chat.stdin.write("hello\n/quit\n")
        chat.stdin.close()
        assert chat.wait(60) == 0, chat.stderr.read() if chat.stderr else ""
        # A stop waits for the postmaster to go (`pg_ctl -w`): had the chat
        # stopped the cluster, it would be down before the chat exited.
        assert setup.healthy()
        assert postmaster_running(setup.data_dir)
    finally:
        if chat.poll() is None:
            chat.kill()
        for stream in (chat.stdout, chat.stderr):
            if stream is not None:
                stream.close()
        setup.server.stop()
    assert not postmaster_running(setup.data_dir)
