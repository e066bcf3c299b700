"""Health while the database comes and goes; graceful shutdown on SIGTERM."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from graph.nodes import answer_id_for
from tests.support.identities import anonymous_session
from tests.support.polling import until
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.ws import Sockets


def wait_for_status(url: str, status: int, timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url, timeout=5).status_code == status:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered {status}")


def test_health_is_503_while_the_database_is_down_and_recovers(
    server_database: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    through_proxy = make_url(server_database).set(host="127.0.0.1", port=proxy.port)
    server = ServerProcess(through_proxy.render_as_string(hide_password=False), tmp_path / "log")
    server.start()
    try:
        health = f"{server.url}/api/health"
        assert httpx.get(health, timeout=5).json()["database"] == "up"
        proxy.cut()
        wait_for_status(health, 503)
        body = httpx.get(health, timeout=10).json()
        assert body["database"] == "down"
        missing = httpx.get(f"{server.url}/api/sessions", headers={"X-Anon-Token": "t"}, timeout=10)
        assert missing.status_code == 503
        assert missing.json()["error"]["code"] == "database_unavailable"
        proxy.restore()
        wait_for_status(health, 200)
    finally:
        server.stop()


async def test_sigterm_lets_the_running_turn_finish(
    server_database: str, tmp_path: Path, ws: Sockets
) -> None:
    server = ServerProcess(
        server_database, tmp_path / "log", THREADLINE_OFFLINE_TOKEN_DELAY_MS="40"
    )
    server.start()
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    query_id = await sock.ask("finish this even while shutting down")
    await sock.until("token")
    # SIGTERM; uvicorn re-raises the signal once its shutdown is complete.
    assert server.stop() in (0, -15)
    server.start()
    sock = await ws.open(server, session_id, headers)
    snapshot = await sock.recv()
    ids = [m["id"] for m in snapshot["messages"]]
    assert ids == [query_id, answer_id_for(query_id)]
    assert snapshot["messages"][1]["cancelled"] is False
    server.stop()


async def test_a_query_while_the_database_is_down_is_answered_with_an_error_frame(
    server_database: str, proxy: TcpProxy, tmp_path: Path, ws: Sockets
) -> None:
    """The socket stays open: its query gets `database_unavailable` (the rights
    cannot be read), and the same query resent once the database is back runs."""
    through_proxy = make_url(server_database).set(host="127.0.0.1", port=proxy.port)
    server = ServerProcess(through_proxy.render_as_string(hide_password=False), tmp_path / "log")
    server.start()
    try:
        session_id, headers = await anonymous_session(server_database)
        sock = await ws.open(server, session_id, headers)
        await sock.recv()
        proxy.cut()
        wait_for_status(f"{server.url}/api/health", 503)
        query_id = await sock.ask("are you there?")
        failed = (await sock.until("error"))[-1]
        assert (failed["code"], failed["id"]) == ("database_unavailable", query_id)

        proxy.restore()
        wait_for_status(f"{server.url}/api/health", 200)

        async def answered() -> bool:
            # The pools may still be backing off their reconnects: resend until run.
            await sock.ask("are you there?", query_id)
            frame = await sock.recv(timeout=60)
            while frame["type"] not in ("done", "error"):
                frame = await sock.recv(timeout=60)
            assert frame["type"] == "done" or frame["code"] == "database_unavailable", frame
            return bool(frame["type"] == "done")

        await until(answered, timeout=60, every=0.5)
    finally:
        server.stop()
