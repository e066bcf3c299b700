"""An open socket keeps only the rights its identity still has.

Two server processes share one database: the socket is opened on the first, the
change (a claim, a logout, a password change, an account deletion) is made
through the second. From then on the old identity can neither send a query nor
receive the session's frames: the server closes that socket with 4401, and a
query sent on it right after the change is never run.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.server import ServerProcess
from tests.support.turns import (
    anonymous_session,
    ask_and_wait,
    closed_with,
    create_session,
    login,
    register_account,
    session_of_message,
    wait_idle,
)
from tests.support.ws import Socket, Sockets

CLOSE_UNAUTHENTICATED = 4401
CLOSE_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def two_processes(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    logs = tmp_path_factory.mktemp("two-processes")
    first = ServerProcess(server_database, logs / "first.log")
    second = ServerProcess(server_database, logs / "second.log")
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda proc: proc.start(), (first, second)))
        yield first, second
    finally:
        first.kill()
        second.kill()


async def opened(
    ws: Sockets, server: ServerProcess, session_id: str, headers: dict[str, str]
) -> Socket:
    sock = await ws.open(server, session_id, headers)
    assert (await sock.recv())["type"] == "session"
    return sock


async def old_socket_problems(sock: Socket, server: ServerProcess, database_url: str) -> list[str]:
    """Right after the change: a query on the old socket, then wait for the close."""
    query_id = str(uuid.uuid4())
    with contextlib.suppress(ConnectionClosed):
        await sock.ask("am I still let in?", query_id)
    code, frames = await closed_with(sock, CLOSE_WITHIN_S)
    await wait_idle(server)  # a query that did start has journaled its question by now
    problems = []
    if code != CLOSE_UNAUTHENTICATED:
        state = f"closed with {code}" if code else "still open"
        kinds = ", ".join(
            f"{len(list(run))}x {kind}" for kind, run in groupby(f["type"] for f in frames)
        )
        problems.append(
            f"the old socket was {state} {CLOSE_WITHIN_S} s after the change; it got: {kinds}"
        )
    ran = any(f["type"] == "ack" and f.get("id") == query_id for f in frames)
    if ran or session_of_message(database_url, query_id) is not None:
        problems.append("a query sent on the old socket after the change was run")
    return problems


async def test_claim_closes_the_anonymous_socket(
    ws: Sockets, two_processes: tuple[ServerProcess, ServerProcess], server_database: str
) -> None:
    first, second = two_processes
    session_id, anon = anonymous_session(second)
    old = await opened(ws, first, session_id, anon)
    account = register_account(second)
    claimed = httpx.post(
        f"{second.url}/api/sessions/{session_id}/claim",
        headers={**anon, **account.headers},
        timeout=10,
    )
    assert claimed.status_code == 200, claimed.text
    problems = await old_socket_problems(old, first, server_database)
    assert not problems, "\n".join(problems)


async def test_logout_closes_the_socket_of_that_token(
    ws: Sockets, two_processes: tuple[ServerProcess, ServerProcess], server_database: str
) -> None:
    first, second = two_processes
    account = register_account(second)
    session_id = create_session(second, account.headers)
    old = await opened(ws, first, session_id, account.headers)
    logout = httpx.post(f"{second.url}/api/auth/logout", headers=account.headers, timeout=10)
    assert logout.status_code == 204, logout.text
    problems = await old_socket_problems(old, first, server_database)
    assert not problems, "\n".join(problems)


async def test_password_change_closes_the_sockets_of_revoked_tokens(
    ws: Sockets, two_processes: tuple[ServerProcess, ServerProcess], server_database: str
) -> None:
    first, second = two_processes
    account = register_account(second)  # logged in with T1
    session_id = create_session(second, account.headers)
    old = await opened(ws, first, session_id, account.headers)
    t2 = {"Authorization": f"Bearer {login(second, account.email)}"}
    kept = await opened(ws, first, session_id, t2)
    changed = httpx.post(
        f"{second.url}/api/auth/password",
        json={"current_password": account.password, "new_password": "a brand new password"},
        headers=t2,
        timeout=10,
    )
    assert changed.status_code == 204, changed.text  # T1 is revoked, T2 is not
    problems = await old_socket_problems(old, first, server_database)
    await old.close()  # if it is still open, the next turn's frames must not pile up in it
    try:
        await ask_and_wait(kept, "still here with the token I changed it with?")
    except (AssertionError, ConnectionClosed, TimeoutError) as exc:
        problems.append(f"the socket of the token still valid stopped working: {exc!r}")
    assert not problems, "\n".join(problems)


async def test_account_deletion_closes_every_socket_of_the_user(
    ws: Sockets, two_processes: tuple[ServerProcess, ServerProcess]
) -> None:
    first, second = two_processes
    account = register_account(second)
    one = create_session(second, account.headers)
    two = create_session(second, account.headers)
    sockets = [
        await opened(ws, first, one, account.headers),
        await opened(ws, first, two, account.headers),
        await opened(ws, second, one, account.headers),
    ]
    deleted = httpx.request(
        "DELETE",
        f"{second.url}/api/auth/me",
        json={"password": account.password},
        headers=account.headers,
        timeout=10,
    )
    assert deleted.status_code == 204, deleted.text
    closed = await asyncio.gather(*(closed_with(sock, CLOSE_WITHIN_S) for sock in sockets))
    codes = [code for code, _ in closed]
    assert codes == [CLOSE_UNAUTHENTICATED] * 3, (
        f"close codes {CLOSE_WITHIN_S} s after the deletion (first, first, second process;"
        f" None: still open): {codes}"
    )
