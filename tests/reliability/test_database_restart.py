"""The database goes away under load and comes back: the server stays up,
health says 503 then 200, turns in flight end with a clear error frame, and
resending them succeeds. The outage is a TCP proxy in front of PostgreSQL that
drops every connection (as a restart does) without touching anyone else's."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.reliability.conftest import REPORTS
from tests.support.identities import anonymous_session
from tests.support.server import ServerProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.ws import Socket

CLIENTS = int(os.environ.get("THREADLINE_RESTART_CLIENTS", "6"))


def health(server: ServerProcess) -> int:
    try:
        return httpx.get(f"{server.url}/api/health", timeout=5).status_code
    except httpx.HTTPError:
        return 0


async def wait_health(server: ServerProcess, status: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while health(server) != status:
        assert time.monotonic() - started < timeout, f"health never answered {status}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def resend_until_answered(sock: Socket, query_id: str, attempts: int = 10) -> int:
    """Resend the same id, as a client does, until it is answered; returns the retries.

    Right after the database returns, the connection pools may still be backing
    off from their failed reconnects: a resend can meet `database_unavailable`.
    """
    for attempt in range(attempts):
        await sock.ask("a long answer, please", query_id)
        while True:
            frame = await sock.recv(timeout=60)
            if frame["type"] == "done":
                return attempt
            if frame["type"] == "error" and frame.get("id") == query_id:
                assert frame["code"] == "database_unavailable", frame
                await asyncio.sleep(1)
                break
    raise AssertionError(f"{query_id} was never answered")


async def test_database_outage_under_load(
    server_database: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    through = make_url(server_database).set(host="127.0.0.1", port=proxy.port)
    # Every client's answer is in flight when the database goes: no graph
    # slots (with the offline model's default eight, clients past the eighth
    # wait for a slot, and the first ones are done before the last one's first
    # token comes).
    server = ServerProcess(
        through.render_as_string(hide_password=False),
        tmp_path / "server.log",
        THREADLINE_OFFLINE_TOKEN_DELAY_MS="50",
        THREADLINE_GRAPH_SLOTS="0",
    )
    server.start()
    try:
        sessions = [await anonymous_session(server_database) for _ in range(CLIENTS)]
        sockets = [await Socket.open(server.ws_url, sid, h) for sid, h in sessions]
        for sock in sockets:
            await sock.recv()
        asked = [await sock.ask("a long answer, please") for sock in sockets]
        for sock in sockets:
            await sock.until("token")
        proxy.cut()  # the database restarts mid-answer
        endings = await asyncio.gather(*(sock.until("error", timeout=60) for sock in sockets))
        codes = {frames[-1]["code"] for frames in endings}
        assert codes == {"database_unavailable"}, codes
        await wait_health(server, 503)
        assert server.proc is not None and server.proc.poll() is None  # still up
        proxy.restore()
        recovery = await wait_health(server, 200)
        retries = 0
        for sock, query_id in zip(sockets, asked, strict=True):
            retries += await resend_until_answered(sock, query_id)
        for (session_id, headers), query_id in zip(sessions, asked, strict=True):
            stored = httpx.get(
                f"{server.url}/api/sessions/{session_id}/messages", headers=headers, timeout=10
            ).json()["messages"]
            assert [m["role"] for m in stored] == ["user", "assistant"]
            assert stored[0]["id"] == query_id  # stored once, answered once
        for sock in sockets:
            await sock.close()
    finally:
        server.stop()
    REPORTS.mkdir(parents=True, exist_ok=True)
    report = {
        "clients": CLIENTS,
        "seconds to healthy after the database returned": round(recovery, 2),
        "resends that met the pools still reconnecting": retries,
    }
    (REPORTS / "database_restart.json").write_text(json.dumps(report, indent=2))
    print("database restart:", report)
