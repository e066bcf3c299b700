"""Sockets that attack the server: one that never reads, numbers past BIGINT,
text that is not Unicode.

Against a real server: a client that asks for the whole journal again and again
without reading must cost the server a bounded amount of memory and be closed
with 4408; numbers and strings PostgreSQL cannot hold are answered with an
`error` frame, and the socket stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import psutil
import psycopg
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.server import ServerProcess
from tests.support.turns import anonymous_session, ask_and_wait, serving, wait_until
from tests.support.ws import Socket, Sockets

CLOSE_TOO_SLOW = 4408
SEQ_MAX = 2**62  # the largest `after_seq` the protocol accepts (as REST's)
JOURNAL = 3000  # messages in the long session: about 3 MB of content
RESUMES = 60  # the attack as it was reported
RSS_GROWTH_MAX = 100 * 2**20  # the server may grow by this much, at most, under the attack
ATTACK_S = 30  # the slow socket must be closed within this


@pytest.fixture
async def ws() -> AsyncIterator[Sockets]:
    sockets = Sockets()
    yield sockets
    with contextlib.suppress(Exception):
        await sockets.close_all()


@pytest.fixture(scope="module")
def own_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server of this module's own, with the default limits (an outbox of 2000
    frames and 8 MiB), so that its memory and its socket count are these tests'."""
    with serving(server_database, tmp_path_factory.mktemp("sockets") / "server.log") as proc:
        yield proc


def seed_long_journal(db_url: str, session_id: str, count: int) -> None:
    """`count` messages of about 1 kB (Hangul: 3 bytes a character) in one statement."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """
            INSERT INTO chat_messages (id, session_id, seq, role, content)
            SELECT gen_random_uuid()::text, %(s)s, g,
                   CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END,
                   g || ' ' || repeat('가나다라 ', 80)
            FROM generate_series(1, %(n)s) AS g
            """,
            {"s": session_id, "n": count},
        )
        conn.execute(
            "UPDATE chat_sessions SET message_count = %(n)s, last_seq = %(n)s WHERE id = %(s)s",
            {"n": count, "s": session_id},
        )


async def non_reading_socket(
    server: ServerProcess, session_id: str, headers: dict[str, str]
) -> Socket:
    """A socket whose client stops reading at once: a tiny receive buffer, a
    client-side queue of one message and no compression (repetitive text would
    shrink to nothing on the wire), so the server's writes back up quickly."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", server.port))
    raw.setblocking(False)
    conn = await connect(
        f"{server.ws_url}/ws/sessions/{session_id}",
        additional_headers=headers,
        sock=raw,
        max_queue=1,
        compression=None,
        ping_interval=None,
    )
    return Socket(conn)


def journaled(db_url: str, session_id: str, message_id: str) -> int:
    """Rows of the session's journal, or with this id anywhere."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM chat_messages WHERE session_id = %s OR id = %s",
            (session_id, message_id),
        ).fetchone()
    return int(row[0]) if row else 0


def active_sockets(server: ServerProcess) -> float:
    reply = httpx.get(f"{server.url}/metrics", timeout=5)
    assert reply.status_code == 200, reply.text
    for line in reply.text.splitlines():
        if line.startswith("threadline_active_sockets "):
            return float(line.split()[1])
    raise AssertionError("no threadline_active_sockets in /metrics")


def rss(server: ServerProcess) -> int:
    assert server.proc is not None
    return int(psutil.Process(server.proc.pid).memory_info().rss)


async def read_until_closed(sock: Socket, timeout: float) -> int | None:
    """Drain what the server had written, up to its close frame: the close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await sock.conn.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def pong(sock: Socket) -> None:
    await sock.send({"type": "ping"})
    frames = await sock.until("pong", timeout=10)
    assert frames[-1] == {"type": "pong"}


async def test_a_client_that_never_reads_costs_bounded_memory_and_is_closed(
    own_server: ServerProcess, server_database: str, ws: Sockets
) -> None:
    """The attack as reported: `resume {after_seq: 0}` again and again on a long
    thread, reading nothing (it grew the server by 415 MB, without end). The
    server may grow by RSS_GROWTH_MAX at most (it grows by about 1 MiB)."""
    await asyncio.to_thread(wait_until, lambda: active_sockets(own_server) == 0, "no socket")
    session_id, headers = anonymous_session(own_server)
    await asyncio.to_thread(seed_long_journal, server_database, session_id, JOURNAL)
    watching = await ws.open(own_server, session_id, headers)  # a healthy tab on the same thread
    assert (await watching.recv())["type"] == "session"
    await pong(watching)
    before = rss(own_server)

    slow = await non_reading_socket(own_server, session_id, headers)
    ws.opened.append(slow)
    for _ in range(RESUMES):
        await slow.send({"type": "resume", "after_seq": 0})

    # A turn on the same thread is never held up by the socket that does not read.
    await ask_and_wait(watching, "hello, is anyone slow here?")

    # The slow client keeps asking for the whole journal until the server gives
    # up on it (each resume waits in its outbox: 2000 frames at most, by default);
    # the server's memory stays bounded throughout.
    deadline = time.monotonic() + ATTACK_S
    peak = before
    while active_sockets(own_server) > 1:
        peak = max(peak, rss(own_server))
        assert peak - before < RSS_GROWTH_MAX, f"the server grew by {(peak - before) >> 20} MiB"
        assert time.monotonic() < deadline, "the socket that never reads was never closed"
        with contextlib.suppress(TimeoutError):  # the server may have stopped reading it
            async with asyncio.timeout(1):
                for _ in range(200):
                    await slow.send({"type": "resume", "after_seq": 0})
        await asyncio.sleep(0.05)
    peak = max(peak, rss(own_server))
    assert peak - before < RSS_GROWTH_MAX, f"the server grew by {(peak - before) >> 20} MiB"

    # Everything else still works: health, the other socket, a new one.
    assert httpx.get(f"{own_server.url}/api/health", timeout=5).status_code == 200
    await pong(watching)
    fresh = await ws.open(own_server, session_id, headers)
    assert (await fresh.recv())["type"] == "session"
    await pong(fresh)

    # Once the client reads, it finds what was already on the wire, then 4408.
    assert await read_until_closed(slow, timeout=15) == CLOSE_TOO_SLOW


async def test_a_reader_gets_the_whole_long_journal_however_often_it_resumes(
    own_server: ServerProcess, server_database: str, ws: Sockets
) -> None:
    """Replay is paged as the client reads, never queued all at once; a resume
    sent while another replays replaces it, and the last one is answered whole."""
    session_id, headers = anonymous_session(own_server)
    await asyncio.to_thread(seed_long_journal, server_database, session_id, JOURNAL)
    sock = await ws.open(own_server, session_id, headers)
    assert (await sock.recv())["type"] == "session"
    for _ in range(3):
        await sock.send({"type": "resume", "after_seq": 0})
    await sock.until("resumed", timeout=60)
    await pong(sock)
    resumed = [i for i, f in enumerate(sock.seen) if f["type"] == "resumed"]
    last = sock.seen[resumed[-1]]
    assert last == {"type": "resumed", "after_seq": 0, "last_seq": JOURNAL, "active_run": False}
    replayed = [f["message"]["seq"] for f in sock.seen[: resumed[-1]] if f.get("replayed")]
    assert replayed[-JOURNAL:] == list(range(1, JOURNAL + 1))


async def test_seq_past_bigint_is_an_error_frame(
    own_server: ServerProcess, server_database: str, ws: Sockets
) -> None:
    session_id, headers = anonymous_session(own_server)
    sock = await ws.open(own_server, session_id, headers)
    assert (await sock.recv())["type"] == "session"
    for after_seq in (2**63, 2**64, SEQ_MAX + 1, 10**30):
        await sock.send(f'{{"type": "resume", "after_seq": {after_seq}}}')
        error = await sock.recv()
        assert error["type"] == "error" and error["code"] == "invalid_frame", error
        await pong(sock)
    await sock.send({"type": "resume", "after_seq": SEQ_MAX})  # the largest one is fine
    resumed = await sock.recv()
    assert resumed["type"] == "resumed" and resumed["last_seq"] == SEQ_MAX, resumed
    await ask_and_wait(sock, "still here?")


@pytest.mark.parametrize("content", ["\\ud800", "a\\udc00b", "\\ud83d\\u0041", "\\udfff\\ud800"])
async def test_lone_surrogates_are_refused_and_nothing_is_journaled(
    own_server: ServerProcess, server_database: str, ws: Sockets, content: str
) -> None:
    session_id, headers = anonymous_session(own_server)
    sock = await ws.open(own_server, session_id, headers)
    assert (await sock.recv())["type"] == "session"
    query_id = str(uuid.uuid4())
    await sock.send(f'{{"type": "query", "id": "{query_id}", "content": "{content}"}}')
    error = await sock.recv()
    assert error["type"] == "error" and error["code"] == "invalid_frame", error
    await pong(sock)
    assert journaled(server_database, session_id, query_id) == 0


async def test_text_that_is_not_utf8_closes_with_1007_and_nothing_else(
    own_server: ServerProcess, server_database: str, ws: Sockets
) -> None:
    """A lone surrogate sent raw (CESU-8 bytes, not a JSON escape) is not UTF-8:
    the WebSocket layer closes with 1007; the server goes on serving."""
    session_id, headers = anonymous_session(own_server)
    sock = await ws.open(own_server, session_id, headers)
    assert (await sock.recv())["type"] == "session"
    query_id = str(uuid.uuid4())
    raw = f'{{"type": "query", "id": "{query_id}", "content": "'.encode() + b'\xed\xa0\x80"}'
    await sock.conn.send(raw, text=True)
    assert await read_until_closed(sock, timeout=10) == 1007
    assert httpx.get(f"{own_server.url}/api/health", timeout=5).status_code == 200
    again = await ws.open(own_server, session_id, headers)
    assert (await again.recv())["type"] == "session"
    await pong(again)
    assert journaled(server_database, session_id, query_id) == 0
