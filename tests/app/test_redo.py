"""Regenerate the last answer, edit the last question: through the journal, so
nothing is doubled, every tab hears what was taken out, and the model sees the
thread without it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graph.nodes import answer_id_for
from tests.support.openai_stub import OpenAIStub, echo_reply, openai_stub, server_on_stub
from tests.support.server import ServerProcess
from tests.support.ws import Socket, Sockets


@pytest.fixture(scope="module")
def stub_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, OpenAIStub]]:
    logs = tmp_path_factory.mktemp("redo") / "server.log"
    with openai_stub() as stub, server_on_stub(server_database, logs, stub) as server:
        yield server, stub


async def chat(ws: Sockets, server: ServerProcess) -> tuple[Socket, Socket, dict[str, str], str]:
    """A new anonymous chat, two tabs on it, two questions answered."""
    reply = httpx.post(f"{server.url}/api/sessions", json={}, timeout=10)
    session_id, headers = reply.json()["id"], {"X-Anon-Token": reply.json()["anon_token"]}
    tab, other = (
        await ws.open(server, session_id, headers),
        await ws.open(server, session_id, headers),
    )
    await tab.recv()
    await other.recv()
    for question in ("first question", "second question"):
        await tab.ask(question)
        await tab.until("done")
        await other.until("done")
    return tab, other, headers, session_id


def journal(server: ServerProcess, session_id: str, headers: dict[str, str]) -> list[dict]:
    url = f"{server.url}/api/sessions/{session_id}/messages?limit=200"
    return httpx.get(url, headers=headers, timeout=10).json()["messages"]


def questions_the_model_saw(stub: OpenAIStub) -> list[tuple[str, Any]]:
    chats = [r for r in stub.requests if r.path.endswith("/chat/completions")]
    return [(m["role"], m["content"]) for m in chats[-1].messages if m["role"] != "system"]


async def test_regenerate_replaces_the_last_answer(
    ws: Sockets, stub_server: tuple[ServerProcess, OpenAIStub]
) -> None:
    server, stub = stub_server
    tab, other, headers, session_id = await chat(ws, server)
    before = journal(server, session_id, headers)
    second = before[2]["id"]
    stub.reply = lambda messages: "a better answer"
    try:
        await tab.send({"type": "regenerate", "id": second})
        frames = await tab.until("done")
    finally:
        stub.reply = echo_reply
    assert frames[0] == {"type": "retracted", "ids": [answer_id_for(second)]}
    answer = next(f["message"] for f in frames if f["type"] == "message")
    assert answer["id"] == answer_id_for(second) and answer["content"] == "a better answer"
    seen = await other.until("done")
    assert [f["ids"] for f in seen if f["type"] == "retracted"] == [[answer_id_for(second)]]
    after = journal(server, session_id, headers)
    assert [m["id"] for m in after] == [m["id"] for m in before]  # nothing doubled
    assert after[3]["content"] == "a better answer" and after[3]["seq"] > before[3]["seq"]
    assert questions_the_model_saw(stub) == [
        ("user", "first question"),
        ("assistant", "stub says: first question"),
        ("user", "second question"),
    ]


async def test_edit_replaces_the_last_question_and_its_answer(
    ws: Sockets, stub_server: tuple[ServerProcess, OpenAIStub]
) -> None:
    server, stub = stub_server
    tab, other, headers, session_id = await chat(ws, server)
    before = journal(server, session_id, headers)
    second, new_id = before[2]["id"], str(uuid.uuid4())
    await tab.send({"type": "edit", "id": second, "new_id": new_id, "content": "third question"})
    frames = await tab.until("done")
    retracted = [f["ids"] for f in frames if f["type"] == "retracted"]
    assert retracted == [[second, answer_id_for(second)]]
    assert [f["ids"] for f in await other.until("done") if f["type"] == "retracted"] == retracted
    after = journal(server, session_id, headers)
    assert [m["content"] for m in after] == [
        "first question",
        "stub says: first question",
        "third question",
        "stub says: third question",
    ]
    assert [m["id"] for m in after][2:] == [new_id, answer_id_for(new_id)]
    assert questions_the_model_saw(stub) == [
        ("user", "first question"),
        ("assistant", "stub says: first question"),
        ("user", "third question"),
    ]
    session = httpx.get(f"{server.url}/api/sessions/{session_id}", headers=headers, timeout=10)
    assert session.json()["message_count"] == 4


async def test_what_cannot_be_redone_changes_nothing(
    ws: Sockets, stub_server: tuple[ServerProcess, OpenAIStub]
) -> None:
    server, stub = stub_server
    tab, _, headers, session_id = await chat(ws, server)
    before = journal(server, session_id, headers)
    first, second = before[0]["id"], before[2]["id"]
    refused = [
        ({"type": "regenerate", "id": first}, "invalid_input"),  # not the last question
        ({"type": "regenerate", "id": before[1]["id"]}, "invalid_input"),  # an answer
        ({"type": "regenerate", "id": str(uuid.uuid4())}, "invalid_input"),  # unknown
        ({"type": "edit", "id": second, "new_id": first, "content": "x"}, "message_id_conflict"),
        (
            {"type": "edit", "id": second, "new_id": str(uuid.uuid4()), "content": " "},
            "invalid_input",
        ),
        (
            {"type": "edit", "id": first, "new_id": str(uuid.uuid4()), "content": "x"},
            "invalid_input",
        ),
        ({"type": "edit", "id": second, "content": "no new id"}, "invalid_frame"),
    ]
    for frame, code in refused:
        await tab.send(frame)
        error = (await tab.until("error"))[-1]
        assert error["code"] == code, (frame, error)
    stub.chunk_delay_s = 0.05  # a turn long enough to be busy during it
    try:
        await tab.ask("a slow one")
        await tab.until("token")
        await tab.send({"type": "regenerate", "id": second})
        assert (await tab.until("error"))[-1]["code"] == "busy"
        await tab.until("done")
    finally:
        stub.chunk_delay_s = 0.0
    after = journal(server, session_id, headers)
    assert [m["id"] for m in after[:4]] == [m["id"] for m in before]
    assert [m["content"] for m in after[4:]] == ["a slow one", "stub says: a slow one"]
