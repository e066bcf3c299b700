"""Slow turns to act during, and what the database must show once they end.

Black-box helpers: they speak HTTP, WebSocket and SQL only and import nothing
of the code under test, so they keep working while app/, graph/, memory/ and
threads/ are reshaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from websockets.exceptions import ConnectionClosed

from tests.support.server import ServerProcess
from tests.support.ws import Socket, Sockets

T = TypeVar("T")

# The offline model answers with about 36 words of its own and echoes up to 200
# characters of the question, one word per token: about 80 tokens for this one,
# so at 150 ms a token its answer streams for about 12 s (tests cancel it once
# they have what they need).
LONG_QUESTION = "please tell me a long story, " + "and then " * 40
PASSWORD = "correct horse battery"
CHECKPOINT_TABLES = ("checkpoints", "checkpoint_writes", "checkpoint_blobs")


# -- servers -------------------------------------------------------------------


@contextlib.contextmanager
def serving(database_url: str, log_path: Path, **env: str) -> Iterator[ServerProcess]:
    """A `threadline serve` of the test's own, SIGKILLed afterwards."""
    proc = ServerProcess(database_url, log_path, **env)
    try:
        proc.start()
        yield proc
    finally:
        proc.kill()


def active_turns(server: ServerProcess) -> int:
    reply = httpx.get(f"{server.url}/api/health", timeout=5)
    assert reply.status_code == 200, reply.text
    return int(reply.json()["active_turns"])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Poll `condition` until it holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


async def wait_idle(server: ServerProcess, timeout: float = 15) -> None:
    """Until no turn runs in `server` (its last checkpoint write is behind it)."""
    await asyncio.to_thread(
        wait_until, lambda: active_turns(server) == 0, "the server's turns ending", timeout
    )


# -- identities, through the real API -------------------------------------------


@dataclass
class Account:
    user_id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def login(server: ServerProcess, email: str, password: str = PASSWORD) -> str:
    reply = httpx.post(
        f"{server.url}/api/auth/login", json={"email": email, "password": password}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["token"]
    return token


def register_account(server: ServerProcess, password: str = PASSWORD) -> Account:
    """A new account, logged in."""
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = httpx.post(
        f"{server.url}/api/auth/register", json={"email": email, "password": password}, timeout=10
    )
    assert created.status_code == 201, created.text
    return Account(created.json()["id"], email, password, login(server, email, password))


def create_session(server: ServerProcess, headers: dict[str, str]) -> str:
    reply = httpx.post(f"{server.url}/api/sessions", json={}, headers=headers, timeout=10)
    assert reply.status_code == 201, reply.text
    session_id: str = reply.json()["id"]
    return session_id


def anonymous_session(
    server: ServerProcess, headers: dict[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """A new anonymous session; pass the headers of an earlier one to reuse its owner."""
    reply = httpx.post(f"{server.url}/api/sessions", json={}, headers=headers or {}, timeout=10)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    if headers:
        return body["id"], headers
    return body["id"], {"X-Anon-Token": body["anon_token"]}


# -- a turn that runs while the test acts ----------------------------------------


@dataclass
class RunningTurn:
    """A turn started over a socket and now streaming its answer."""

    sock: Socket
    query_id: str
    run_id: str | None
    frames: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None  # "done", "error:<code>" or "closed:<close code>"
    answer: dict[str, Any] | None = None

    def _mine(self, frame: dict[str, Any]) -> bool:
        return frame.get("run_id") == self.run_id or frame.get("id") == self.query_id

    async def end(self, timeout: float = 60) -> str:
        """Read the socket until this turn's `done` or `error`, or the socket closes."""
        if self.outcome is not None:
            return self.outcome
        try:
            async with asyncio.timeout(timeout):
                while self.outcome is None:
                    frame = await self.sock.recv(timeout)
                    self.frames.append(frame)
                    if frame["type"] == "message" and self._mine(frame):
                        self.answer = frame["message"]
                    elif frame["type"] == "done" and self._mine(frame):
                        self.outcome = "done"
                    elif frame["type"] == "error" and self._mine(frame):
                        self.outcome = f"error:{frame.get('code')}"
        except ConnectionClosed as exc:
            self.outcome = f"closed:{exc.rcvd.code if exc.rcvd else None}"
        except TimeoutError:
            raise AssertionError(f"the turn did not end within {timeout} s") from None
        return self.outcome

    async def cancel(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.sock.send({"type": "cancel"})

    def describe(self) -> str:
        errors = [f for f in self.frames if f["type"] == "error"]
        return f"turn ended with {self.outcome}" + (f" {errors[-1]}" if errors else "")


async def start_turn(
    ws: Sockets,
    server: ServerProcess,
    session_id: str,
    headers: dict[str, str],
    content: str = LONG_QUESTION,
) -> RunningTurn:
    """Ask on a new socket and return once the question is journaled (`ack`) and
    the answer streams (`token`): the turn holds its thread from here on."""
    sock = await ws.open(server, session_id, headers)
    first = await sock.recv()
    assert first["type"] == "session", first
    query_id = await sock.ask(content)
    frames = await sock.until("token")
    acks = [f for f in frames if f["type"] == "ack" and f["id"] == query_id]
    assert acks, frames
    return RunningTurn(sock, query_id, acks[0].get("run_id"), frames)


async def during(
    turn: RunningTurn,
    operation: Awaitable[T],
    *,
    patience: float | None = None,
    timeout: float = 90,
) -> T:
    """Run `operation` while `turn` runs and return its result.

    An operation that returns while the turn still runs acted during it (busy,
    or the bug): the turn is then cancelled to save time (its partial answer is
    journaled all the same). One that waits for the turn returns after it; with
    `patience`, an operation still pending after that many seconds is taken to
    be waiting, and the turn is cancelled so that the wait ends sooner. Only
    give `patience` to operations that start acting at once (a request, a tool
    call), never to a child process still starting up.
    """
    op = asyncio.ensure_future(operation)
    ended = asyncio.ensure_future(turn.end(timeout))
    finished, _ = await asyncio.wait(
        {op, ended}, timeout=patience, return_when=asyncio.FIRST_COMPLETED
    )
    if not ended.done() and (op in finished or not finished):
        await turn.cancel()
    await ended
    return await asyncio.wait_for(op, timeout)


# -- what the database shows -------------------------------------------------------


def _one(db_url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def session_exists(db_url: str, session_id: str) -> bool:
    return bool(_one(db_url, "SELECT count(*) FROM chat_sessions WHERE id = %s", session_id))


def session_of_message(db_url: str, message_id: str) -> str | None:
    found: str | None = _one(
        db_url, "SELECT session_id FROM chat_messages WHERE id = %s", message_id
    )
    return found


def journal(db_url: str, session_id: str) -> list[tuple[str, int, str, str]]:
    """(id, seq, role, content) of a session's messages, by seq."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, seq, role, content FROM chat_messages WHERE session_id = %s ORDER BY seq",
            (session_id,),
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def thread_rows(db_url: str, thread_id: str) -> dict[str, int]:
    """How many journal and checkpoint rows name this session / thread."""
    counts = {
        "chat_messages": _one(
            db_url, "SELECT count(*) FROM chat_messages WHERE session_id = %s", thread_id
        )
    }
    for table in CHECKPOINT_TABLES:
        counts[table] = _one(
            db_url, f"SELECT count(*) FROM {table} WHERE thread_id = %s", thread_id
        )
    return {table: n for table, n in counts.items() if n}


def journal_problems(
    db_url: str, session_id: str, question_id: str | None, answer_id: str | None
) -> list[str]:
    """What breaks "never interleaved": gaps in seq, two turns' messages mixed,
    or a question not followed by its own answer."""
    rows = journal(db_url, session_id)
    problems = []
    seqs, roles, ids = [r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows]
    if seqs != list(range(1, len(rows) + 1)):
        problems.append(f"session {session_id}: seqs are not 1..n: {seqs}")
    alternating = ["user", "assistant"] * (len(rows) // 2)
    if roles != alternating:
        problems.append(f"session {session_id}: roles do not alternate: {roles}")
    if question_id is not None:
        at = ids.index(question_id) if question_id in ids else None
        following = ids[at + 1] if at is not None and at + 1 < len(ids) else None
        if answer_id is None or following != answer_id:
            problems.append(
                f"session {session_id}: the question {question_id} is not followed by its "
                f"answer {answer_id} (next: {following}; roles {roles})"
            )
    return problems


def orphan_problems(db_url: str, *session_ids: str) -> list[str]:
    """Rows left behind by sessions that no longer exist."""
    problems = []
    for session_id in session_ids:
        if not session_exists(db_url, session_id):
            left = thread_rows(db_url, session_id)
            if left:
                problems.append(f"session {session_id} is gone but rows remain: {left}")
    return problems


def turn_problems(db_url: str, turn: RunningTurn, *session_ids: str) -> list[str]:
    """The turn ran to its `done` with its answer right after its question
    (wherever the question is now), and no deleted session left rows behind."""
    problems = []
    if turn.outcome != "done" or turn.answer is None:
        problems.append(f"the turn was broken: {turn.describe()}")
    home = session_of_message(db_url, turn.query_id)
    if home is not None:
        answer_id = turn.answer["id"] if turn.answer else None
        problems += journal_problems(db_url, home, turn.query_id, answer_id)
    return problems + orphan_problems(db_url, *session_ids)


# -- sockets whose rights are taken away -------------------------------------------------


async def closed_with(sock: Socket, timeout: float = 5) -> tuple[int | None, list[dict[str, Any]]]:
    """Read until the server closes the socket: its close code (None if it stayed
    open for `timeout` s) and the frames that came meanwhile."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(await sock.recv(timeout))
    except ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else None), frames
    except TimeoutError:
        return None, frames


async def ask_and_wait(sock: Socket, content: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Ask and read up to this query's own `done` (frames of earlier runs are skipped);
    fails on its error or a closed socket."""
    query_id = await sock.ask(content)
    run_id, frames = None, []
    async with asyncio.timeout(timeout):
        while True:
            frame = await sock.recv(timeout)
            frames.append(frame)
            if frame["type"] == "ack" and frame["id"] == query_id:
                run_id = frame.get("run_id")
            elif frame["type"] == "error" and frame.get("id") == query_id:
                raise AssertionError(f"the query failed: {frame}")
            elif frame["type"] == "done" and run_id is not None and frame["run_id"] == run_id:
                return frames
