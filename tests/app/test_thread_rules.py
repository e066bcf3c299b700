"""Every way into a thread goes through the same door.

For each entry point (REST, the `threadline` CLI, the MCP stdio server, the
terminal chat, the periodic cleanup inside `serve`, account deletion), an
operation on a session while a slow turn runs in it either waits for the turn
or answers busy. Afterwards the journal shows no interleaving (seq 1..n, user
and assistant alternating, the turn's answer right after its question) and no
deleted session left journal or checkpoint rows behind.

Black box only: HTTP, WebSocket, child processes and SQL on the server's database.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.support.cli import threadline
from tests.support.server import ROOT, ServerProcess
from tests.support.turns import (
    CHECKPOINT_TABLES,
    LONG_QUESTION,
    Account,
    anonymous_session,
    create_session,
    during,
    journal,
    journal_problems,
    orphan_problems,
    register_account,
    serving,
    session_exists,
    start_turn,
    turn_problems,
    wait_idle,
    wait_until,
)
from tests.support.ws import Sockets

SLOW_MS = "150"  # LONG_QUESTION's answer streams ~12 s: twice a CLI start (~5 s)
PATIENCE_S = 3.0  # a request or tool call still pending this long is waiting for the turn


@pytest.fixture(scope="module")
def slow_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One slow server for this module; every test makes its own owners and sessions."""
    log = tmp_path_factory.mktemp("slow-server") / "server.log"
    with serving(server_database, log, THREADLINE_OFFLINE_TOKEN_DELAY_MS=SLOW_MS) as proc:
        yield proc


def cli_env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url}


def expire(database_url: str, *session_ids: str) -> None:
    """Make sessions expired (what cleanup removes), as if their time had run out."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE chat_sessions SET expires_at = now() - interval '1 hour' WHERE id = ANY(%s)",
            (list(session_ids),),
        )


# -- what each entry point may answer: busy, or success after waiting -------------


def rest_problems(reply: httpx.Response, ok: int) -> list[str]:
    if reply.status_code == ok:
        return []
    if reply.status_code == 409 and reply.json().get("error", {}).get("code") == "busy":
        return []
    return [f"REST answered {reply.status_code} {reply.text[:300]}"]


def cli_problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    if result.returncode == 0 or "busy" in result.stderr.lower():
        return []
    return [f"the CLI failed with {result.returncode}: {result.stderr.strip()[-500:]}"]


def mcp_problems(result: Any) -> list[str]:
    text = " ".join(getattr(part, "text", "") for part in result.content)
    if not result.is_error or "busy" in text.lower():
        return []
    return [f"the MCP tool failed: {text[:500]}"]


# -- REST: these hold the thread's lock already -------------------------------------


async def test_rest_delete_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    session_id, headers = anonymous_session(slow_server)
    turn = await start_turn(ws, slow_server, session_id, headers)
    async with httpx.AsyncClient(base_url=slow_server.url, timeout=90) as client:
        delete = client.delete(f"/api/sessions/{session_id}", headers=headers)
        reply = await during(turn, delete, patience=PATIENCE_S)
    await wait_idle(slow_server)
    problems = rest_problems(reply, 204) + turn_problems(server_database, turn, session_id)
    assert not problems, "\n".join(problems)


async def test_rest_merge_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    target, headers = anonymous_session(slow_server)
    other, _ = anonymous_session(slow_server, headers)
    turn = await start_turn(ws, slow_server, other, headers)  # in the one the merge removes
    async with httpx.AsyncClient(base_url=slow_server.url, timeout=90) as client:
        merge = client.post(
            f"/api/sessions/{target}/merge", json={"other_id": other}, headers=headers
        )
        reply = await during(turn, merge, patience=PATIENCE_S)
    await wait_idle(slow_server)
    problems = rest_problems(reply, 200) + turn_problems(server_database, turn, target, other)
    assert not problems, "\n".join(problems)


async def test_rest_claim_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    session_id, anon = anonymous_session(slow_server)
    turn = await start_turn(ws, slow_server, session_id, anon)
    account = register_account(slow_server)
    async with httpx.AsyncClient(base_url=slow_server.url, timeout=90) as client:
        claim = client.post(
            f"/api/sessions/{session_id}/claim", headers={**anon, **account.headers}
        )
        reply = await during(turn, claim, patience=PATIENCE_S)
    await wait_idle(slow_server)
    problems = rest_problems(reply, 200) + turn_problems(server_database, turn, session_id)
    assert not problems, "\n".join(problems)


# -- the CLI ---------------------------------------------------------------------


async def test_cli_merge_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    account = register_account(slow_server)
    target = create_session(slow_server, account.headers)
    other = create_session(slow_server, account.headers)
    turn = await start_turn(ws, slow_server, other, account.headers)
    merge = asyncio.to_thread(
        threadline,
        *("sessions", "merge", target, other, "--user", account.email),
        **cli_env(server_database),
    )
    result = await during(turn, merge)
    await wait_idle(slow_server)
    problems = cli_problems(result) + turn_problems(server_database, turn, target, other)
    assert not problems, "\n".join(problems)


async def test_cli_cleanup_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    session_id, headers = anonymous_session(slow_server)
    turn = await start_turn(ws, slow_server, session_id, headers)
    expire(server_database, session_id)  # the question is journaled; the answer is not yet
    cleanup = asyncio.to_thread(threadline, "sessions", "cleanup", **cli_env(server_database))
    result = await during(turn, cleanup)
    await wait_idle(slow_server)
    problems = cli_problems(result) + turn_problems(server_database, turn, session_id)
    assert not problems, "\n".join(problems)


# -- the MCP stdio server, scoped to one user ----------------------------------------


def mcp_params(database_url: str, account: Account) -> StdioServerParameters:
    env = {**os.environ, "DATABASE_URL": database_url}
    args = ["-m", "app", "mcp", "--user", account.email]
    return StdioServerParameters(command=sys.executable, args=args, cwd=str(ROOT), env=env)


async def test_mcp_merge_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    account = register_account(slow_server)
    target = create_session(slow_server, account.headers)
    other = create_session(slow_server, account.headers)
    params = mcp_params(server_database, account)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
        await mcp.initialize()  # started before the turn: its start is slower than a tool call
        turn = await start_turn(ws, slow_server, other, account.headers)
        merge = mcp.call_tool("merge_sessions", {"session_id": target, "other_id": other})
        result = await during(turn, merge, patience=PATIENCE_S)
    await wait_idle(slow_server)
    problems = mcp_problems(result) + turn_problems(server_database, turn, target, other)
    assert not problems, "\n".join(problems)


async def test_mcp_cleanup_during_a_turn(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    account = register_account(slow_server)
    session_id = create_session(slow_server, account.headers)
    params = mcp_params(server_database, account)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
        await mcp.initialize()
        turn = await start_turn(ws, slow_server, session_id, account.headers)
        expire(server_database, session_id)
        cleanup = mcp.call_tool("cleanup_sessions", {"dry_run": False})
        result = await during(turn, cleanup, patience=PATIENCE_S)
    await wait_idle(slow_server)
    problems = mcp_problems(result) + turn_problems(server_database, turn, session_id)
    assert not problems, "\n".join(problems)


# -- the terminal chat against a CLI merge ---------------------------------------------


class TerminalChat:
    """`threadline chat` in a child process, typed into through a pipe."""

    def __init__(self, *args: str, **env: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        environment.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "chat", *args],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out, self._err = bytearray(), bytearray()
        self._lock = threading.Lock()
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, buffer), daemon=True)
            for stream, buffer in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: Any, buffer: bytearray) -> None:
        while chunk := os.read(stream.fileno(), 4096):
            with self._lock:
                buffer.extend(chunk)

    @property
    def output(self) -> str:
        with self._lock:
            return self._out.decode(errors="replace")

    @property
    def errors(self) -> str:
        with self._lock:
            return self._err.decode(errors="replace")

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, text: str, after: int = 0, timeout: float = 60) -> int:
        """Where `text` appears in the output after `after`; fails if the chat exits first."""
        deadline = time.monotonic() + timeout
        while (at := self.output.find(text, after)) < 0:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the chat exited ({self.proc.returncode}) before printing {text!r}:\n"
                    f"{self.output[-800:]}\n{self.errors[-1500:]}"
                )
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s: {self.output}"
            time.sleep(0.05)
        return at

    def close(self) -> None:
        """Quit (or kill), then close every pipe once its reader has seen the end."""
        if self.proc.poll() is None:
            try:
                self.type("/quit")
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        for pump in self._pumps:
            pump.join(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def new_terminal_session(database_url: str) -> str:
    started = threadline("chat", stdin="/quit\n", **cli_env(database_url))
    found = re.search(r"session ([0-9a-f-]{36})", started.stdout)
    assert started.returncode == 0 and found, (started.stdout, started.stderr)
    return found.group(1)


@pytest.fixture
def chats() -> Iterator[list[TerminalChat]]:
    opened: list[TerminalChat] = []
    yield opened
    for chat in opened:
        chat.close()


async def test_terminal_chat_turn_against_cli_merge(
    server_database: str, chats: list[TerminalChat]
) -> None:
    """The terminal owns its sessions; `threadline sessions merge` without --user acts
    for the same owner, so it can merge away the session the chat is answering in."""
    target, other = await asyncio.gather(
        asyncio.to_thread(new_terminal_session, server_database),
        asyncio.to_thread(new_terminal_session, server_database),
    )
    chat = TerminalChat(
        "--session", other, **cli_env(server_database), THREADLINE_OFFLINE_TOKEN_DELAY_MS=SLOW_MS
    )
    chats.append(chat)
    prompt = await asyncio.to_thread(chat.wait_for, "you> ")
    chat.type(LONG_QUESTION)
    answering = await asyncio.to_thread(chat.wait_for, "[offline", prompt)  # question journaled
    result = await asyncio.to_thread(
        threadline, "sessions", "merge", target, other, **cli_env(server_database)
    )
    await asyncio.to_thread(chat.wait_for, "you> ", answering)  # the turn is over
    chat.close()
    printed = chat.output[answering:]
    problems = cli_problems(result) + orphan_problems(server_database, target, other)
    if errors := re.findall(r"\[([a-z_]+)\] ", printed):
        problems.append(f"the terminal's turn failed with {errors}: {printed[-300:]!r}")
    homes = [
        s
        for s in (target, other)
        if any(m[3] == LONG_QUESTION for m in journal(server_database, s))
    ]
    for home in homes:
        problems += journal_problems(server_database, home, None, None)
    if not homes:
        problems.append("the terminal's question is nowhere in the journal")
    assert not problems, "\n".join(problems)


# -- the periodic cleanup inside `serve` ----------------------------------------------


async def test_periodic_cleanup_never_deletes_mid_turn(
    ws: Sockets, server_database: str, tmp_path: Path
) -> None:
    """A canary session expires with the busy one: once the canary is gone, a cleanup
    pass has reached the busy session (it is older, so it comes first)."""
    with serving(
        server_database,
        tmp_path / "server.log",
        THREADLINE_OFFLINE_TOKEN_DELAY_MS=SLOW_MS,
        THREADLINE_CLEANUP_INTERVAL_S="0.3",
    ) as server:
        session_id, headers = anonymous_session(server)
        canary, _ = anonymous_session(server)
        turn = await start_turn(ws, server, session_id, headers)
        with psycopg.connect(server_database, autocommit=True) as conn:
            conn.execute(
                "UPDATE chat_sessions SET expires_at = now() - interval '1 hour',"
                " last_activity_at = now() - CASE WHEN id = %s THEN interval '2 hours'"
                " ELSE interval '1 hour' END WHERE id = ANY(%s)",
                (session_id, [session_id, canary]),
            )
        pass_done = asyncio.to_thread(
            wait_until, lambda: not session_exists(server_database, canary), "a cleanup pass", 60
        )
        await during(turn, pass_done, patience=5)  # 15 passes' time
        await wait_idle(server)
        problems = turn_problems(server_database, turn, session_id)
    assert not problems, "\n".join(problems)


# -- account deletion during a turn -------------------------------------------------------


ACCOUNT_ROWS = {
    "users": "SELECT count(*) FROM users WHERE id = %(u)s",
    "auth_tokens": "SELECT count(*) FROM auth_tokens WHERE user_id = %(u)s",
    "chat_sessions": "SELECT count(*) FROM chat_sessions WHERE user_id = %(u)s OR id = ANY(%(s)s)",
    "chat_messages": "SELECT count(*) FROM chat_messages WHERE session_id = ANY(%(s)s)",
    "memories": (
        "SELECT count(*) FROM memories WHERE user_id = %(u)s OR source_session_id = ANY(%(s)s)"
    ),
    **{t: f"SELECT count(*) FROM {t} WHERE thread_id = ANY(%(s)s)" for t in CHECKPOINT_TABLES},
}


def rows_of_account(database_url: str, user_id: str, session_ids: list[str]) -> dict[str, int]:
    """Rows anywhere that still belong to the user or name one of their sessions."""
    counts = {}
    with psycopg.connect(database_url) as conn:
        for table, sql in ACCOUNT_ROWS.items():
            row = conn.execute(sql, {"u": user_id, "s": session_ids}).fetchone()
            counts[table] = row[0] if row else 0
    return {table: n for table, n in counts.items() if n}


async def test_account_deletion_during_a_turn_leaves_nothing(
    ws: Sockets, slow_server: ServerProcess, server_database: str
) -> None:
    account = register_account(slow_server)
    session_id = create_session(slow_server, account.headers)
    idle_session = create_session(slow_server, account.headers)
    remembered = httpx.post(
        f"{slow_server.url}/api/memories",
        json={"kind": "fact", "content": "likes long stories"},
        headers=account.headers,
        timeout=10,
    )
    assert remembered.status_code == 201, remembered.text
    turn = await start_turn(ws, slow_server, session_id, account.headers)
    async with httpx.AsyncClient(base_url=slow_server.url, timeout=90) as client:
        deletion = client.request(
            "DELETE", "/api/auth/me", json={"password": account.password}, headers=account.headers
        )
        reply = await during(turn, deletion, patience=PATIENCE_S)
    assert reply.status_code == 204, reply.text
    await wait_idle(slow_server)  # the turn has ended before anything is counted
    left = rows_of_account(server_database, account.user_id, [session_id, idle_session])
    assert left == {}, f"rows left after deleting the account ({turn.describe()}): {left}"
