"""A small WebSocket client for protocol tests (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

# The offline model says the question back: its answer to this streams for
# seconds (a token a word), long enough to act in the middle of it, however
# loaded the machine.
LONG_QUESTION = "please tell me a long story, " + " ".join(f"word{n}" for n in range(200))


class Socket:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, base: str, session_id: str, headers: dict[str, str]) -> Socket:
        conn = await connect(f"{base}/ws/sessions/{session_id}", additional_headers=headers)
        return cls(conn)

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def ask(self, content: str, query_id: str | None = None) -> str:
        query_id = query_id or str(uuid.uuid4())
        await self.send({"type": "query", "id": query_id, "content": content})
        return query_id

    async def recv(self, timeout: float = 15) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        self.seen.append(frame)
        return frame

    async def until(self, kind: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Frames up to and including the first of type `kind`."""
        frames = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                frames.append(frame)
                if frame["type"] == kind:
                    return frames

    def messages_seen(self) -> set[str]:
        """The ids of the messages this socket has been sent so far."""
        return {f["message"]["id"] for f in self.seen if f["type"] == "message"}

    async def until_seen(self, message_ids: set[str], timeout: float = 30) -> None:
        """Read frames until every one of `message_ids` has come as a `message`
        frame; fail naming those that never did."""
        try:
            async with asyncio.timeout(timeout):
                while not message_ids <= self.messages_seen():
                    await self.recv(timeout)
        except TimeoutError:
            missed = message_ids - self.messages_seen()
            raise AssertionError(f"messages never sent to this socket: {missed}") from None

    async def close(self) -> None:
        await self.conn.close()


class Sockets:
    """Opens sockets for a test and closes every one of them afterwards."""

    def __init__(self) -> None:
        self.opened: list[Socket] = []

    async def open(self, server: Any, session_id: str, headers: dict[str, str]) -> Socket:
        sock = await Socket.open(server.ws_url, session_id, headers)
        self.opened.append(sock)
        return sock

    async def close_all(self) -> None:
        for sock in self.opened:
            await sock.close()
