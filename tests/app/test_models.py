"""A model per chat: the server lists what its OpenAI-compatible endpoint lists,
a chat chooses one (remembered on the session), and its turns use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.openai_stub import OpenAIStub, openai_stub, server_on_stub
from tests.support.server import ServerProcess
from tests.support.ws import Sockets


@pytest.fixture(scope="module")
def stub_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, OpenAIStub]]:
    listed = ["stub-model", "bigger-model", "tiny-model"]
    logs = tmp_path_factory.mktemp("models") / "server.log"
    with (
        openai_stub(listed_models=listed) as stub,
        server_on_stub(server_database, logs, stub) as server,
    ):
        yield server, stub


def new_chat(server: ServerProcess, **body: object) -> tuple[dict, dict[str, str]]:
    reply = httpx.post(f"{server.url}/api/sessions", json=body, timeout=10)
    assert reply.status_code == 201, reply.text
    return reply.json(), {"X-Anon-Token": reply.json()["anon_token"]}


async def model_of_a_turn(
    ws: Sockets, server: ServerProcess, stub: OpenAIStub, session_id: str, headers: dict[str, str]
) -> str:
    """The model the stub was asked for by one turn of this chat."""
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    asked = len(stub.requests)
    await sock.ask("which model are you?")
    frames = await sock.until("done")
    assert [f for f in frames if f["type"] == "error"] == []
    chats = [r for r in stub.requests[asked:] if r.path.endswith("/chat/completions")]
    assert chats
    return str(chats[-1].body["model"])


async def test_a_chat_uses_the_model_it_chose(
    ws: Sockets, stub_server: tuple[ServerProcess, OpenAIStub]
) -> None:
    server, stub = stub_server
    listed = httpx.get(f"{server.url}/api/models", timeout=10).json()
    assert listed == {
        "models": ["stub-model", "bigger-model", "tiny-model"],
        "default": "stub-model",
    }
    chat, headers = new_chat(server)
    assert chat["model"] is None
    url = f"{server.url}/api/sessions/{chat['id']}"
    assert await model_of_a_turn(ws, server, stub, chat["id"], headers) == "stub-model"

    chosen = httpx.patch(url, json={"model": "bigger-model"}, headers=headers, timeout=10)
    assert chosen.status_code == 200 and chosen.json()["model"] == "bigger-model"
    assert httpx.get(url, headers=headers, timeout=10).json()["model"] == "bigger-model"
    assert await model_of_a_turn(ws, server, stub, chat["id"], headers) == "bigger-model"

    back = httpx.patch(url, json={"model": None}, headers=headers, timeout=10)
    assert back.status_code == 200 and back.json()["model"] is None
    assert await model_of_a_turn(ws, server, stub, chat["id"], headers) == "stub-model"

    tiny, tiny_headers = new_chat(server, model="tiny-model")  # chosen at creation
    assert tiny["model"] == "tiny-model"
    assert await model_of_a_turn(ws, server, stub, tiny["id"], tiny_headers) == "tiny-model"


def test_a_model_not_offered_is_refused_and_changes_nothing(
    stub_server: tuple[ServerProcess, OpenAIStub],
) -> None:
    server, _ = stub_server
    chat, headers = new_chat(server, model="bigger-model")
    url = f"{server.url}/api/sessions/{chat['id']}"
    for model in ("gpt-imaginary", "", "x" * 300, 5):
        reply = httpx.patch(url, json={"model": model}, headers=headers, timeout=10)
        assert reply.status_code == 422, reply.text
        assert reply.json()["error"]["code"] in ("invalid_input", "invalid_request")
    refused = httpx.post(f"{server.url}/api/sessions", json={"model": "nope"}, timeout=10)
    assert refused.status_code == 422
    assert httpx.get(url, headers=headers, timeout=10).json()["model"] == "bigger-model"
    other, other_headers = new_chat(server)
    stranger = httpx.patch(url, json={"model": "tiny-model"}, headers=other_headers, timeout=10)
    assert stranger.status_code == 404
    assert httpx.get(url, headers=headers, timeout=10).json()["model"] == "bigger-model"


def test_the_offline_server_offers_the_offline_model(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/api/models", timeout=10).json() == {
        "models": ["offline"],
        "default": "offline",
    }
    chat, headers = new_chat(server)
    url = f"{server.url}/api/sessions/{chat['id']}"
    unknown = httpx.patch(url, json={"model": "gpt-4o"}, headers=headers, timeout=10)
    assert unknown.status_code == 422
    offline = httpx.patch(url, json={"model": "offline"}, headers=headers, timeout=10)
    assert offline.status_code == 200 and offline.json()["model"] is None


def test_the_endpoint_not_listing_leaves_the_default(tmp_path: Path, server_database: str) -> None:
    """An endpoint without GET /models (or down): the default is all there is."""
    with (
        openai_stub(listed_models=[]) as stub,
        server_on_stub(
            server_database, tmp_path / "server.log", stub, THREADLINE_MODEL="only-model"
        ) as server,
    ):
        listed = httpx.get(f"{server.url}/api/models", timeout=10).json()
    assert listed == {"models": ["only-model"], "default": "only-model"}
