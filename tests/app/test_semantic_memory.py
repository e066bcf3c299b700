"""Memory found by meaning, through the server: a real `threadline serve` (its
own, on the embedded PostgreSQL 18 with pgvector, the local embedder) and the
offline model, which answers from the memory recall found."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langgraph_sdk import get_client

from tests.support.api import new_session, register, wait_for_memories
from tests.support.server import ServerProcess
from tests.support.ws import Sockets


@pytest.fixture(scope="module")
def vector_server_process(
    vector_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = ServerProcess(vector_url, tmp_path_factory.mktemp("semantic") / "server.log")
    proc.start()
    yield proc
    proc.stop()


async def ask(
    ws: Sockets, server: ServerProcess, session_id: str, headers: dict[str, str], text: str
) -> list[dict]:
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    await sock.ask(text)
    return await sock.until("done")


async def test_a_paraphrase_finds_what_was_said_in_another_thread(
    vector_server_process: ServerProcess, ws: Sockets
) -> None:
    server = vector_server_process
    health = httpx.get(f"{server.url}/api/health", timeout=10).json()
    assert health["memory_recall"] == "hybrid"
    headers = register(server)
    first = new_session(server, headers, title="Check-up")
    await ask(
        ws,
        server,
        first["id"],
        headers,
        "My doctor is Dr. Hansen. I play the cello in an orchestra.",
    )
    saved = wait_for_memories(server, headers, count=3)  # two facts and the summary
    assert {m["content"] for m in saved if m["kind"] != "summary"} == {
        "User said: My doctor is Dr. Hansen",
        "User said: I play the cello in an orchestra",
    }
    second = new_session(server, headers)
    frames = await ask(ws, server, second["id"], headers, "Who is my physician?")
    loaded = next(f for f in frames if f["type"] == "memory_loaded")
    relevant = [m for m in loaded["memories"] if m["relevant"]]
    assert relevant[0]["content"] == "User said: My doctor is Dr. Hansen"
    assert relevant[0]["source_session_id"] == first["id"]
    answer = next(f["message"] for f in frames if f["type"] == "message")
    assert "You told me: My doctor is Dr. Hansen" in answer["content"]
    frames = await ask(ws, server, second["id"], headers, "What instrument do I perform?")
    answer = next(f["message"] for f in frames if f["type"] == "message")
    assert "You told me: I play the cello in an orchestra" in answer["content"]


async def test_the_stores_search_finds_a_memory_by_meaning(
    vector_server_process: ServerProcess,
) -> None:
    """`client.store.search_items(query=…)` is recall by meaning too: a query
    sharing no word with the memory finds it first."""
    server = vector_server_process
    headers = register(server)
    async with get_client(url=server.url, headers=headers, api_key=None) as client:
        for key, content in [
            ("doctor", "My doctor is Dr. Hansen"),
            ("instrument", "I play the cello in an orchestra"),
            ("home", "I live in a flat near the harbour"),
        ]:
            await client.store.put_item(["memories", "fact"], key, {"content": content})
        found = await client.store.search_items(["memories"], query="Who is my physician?")
        assert found["items"][0]["key"] == "doctor", found
        found = await client.store.search_items(["memories"], query="which musical instrument")
        assert found["items"][0]["key"] == "instrument", found
