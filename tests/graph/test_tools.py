"""The agent's memory tools on the ChatOpenAI path, against the local stub."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from graph.llm import build_chat_model
from graph.turn import Turn, run_turn
from memory.journal import NewMessage
from memory.memories import MemoryDraft, MemoryStore
from memory.sessions import Owner
from tests.graph.conftest import Harness
from tests.support.openai_stub import Messages, OpenAIStub, StubToolCall, openai_stub
from tests.support.users import create_user


class Script:
    """Answer with the queued tool calls first, then with text."""

    def __init__(self, *rounds: list[StubToolCall]) -> None:
        self.rounds = list(rounds)

    def __call__(self, messages: Messages) -> str | list[StubToolCall]:
        if self.rounds:
            return self.rounds.pop(0)
        results = [m.get("content", "") for m in messages if m.get("role") == "tool"]
        return f"done; tools said: {' | '.join(results)}"


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as running:
        yield running


async def turn(
    harness: Harness, stub: OpenAIStub, session_id: str, user_id: str | None, *, memory: bool = True
) -> list[dict[str, Any]]:
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    ctx = harness.context(model=model, memories=MemoryStore(harness.db))
    query = {"id": str(uuid.uuid4()), "content": "please use your tools"}
    return [
        e
        async for e in run_turn(
            harness.graph, harness.db.pool, ctx, Turn(session_id, user_id, memory, query)
        )
    ]  # type: ignore[arg-type]


def answer(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e["message"] for e in events if e["type"] == "message")


async def test_remember_saves_a_memory_with_its_source(harness: Harness, stub: OpenAIStub) -> None:
    user = await create_user(harness.db, "tools@example.com")
    session = await harness.sessions.create(Owner(user_id=user))
    stub.reply = Script(
        [StubToolCall("remember", {"content": "prefers tea", "kind": "preference", "key": "drink"})]
    )
    events = await turn(harness, stub, session.id, user)
    message = answer(events)
    assert message["tools_used"] == [
        {
            "name": "remember",
            "args": {"content": "prefers tea", "kind": "preference", "key": "drink"},
            "ok": True,
        }
    ]
    assert "Saved memory" in message["content"]
    assert [e["name"] for e in events if e["type"] == "tool"] == ["remember", "remember"]
    saved = await MemoryStore(harness.db).list(user, kind="preference")
    assert [(m.content, m.source_session_id) for m in saved] == [("prefers tea", session.id)]
    assert "tools" in stub.completions[0].body  # offered to a logged-in user with memory on


async def test_search_finds_only_the_users_own_past_conversations(
    harness: Harness, stub: OpenAIStub
) -> None:
    me, other = (
        await create_user(harness.db, "me@example.com"),
        await create_user(harness.db, "other@example.com"),
    )
    mine = await harness.sessions.create(Owner(user_id=me), title="Seoul trip")
    theirs = await harness.sessions.create(Owner(user_id=other))
    await harness.journal.append(mine.id, NewMessage(str(uuid.uuid4()), "user", "서울 맛집 목록"))
    await harness.journal.append(
        theirs.id, NewMessage(str(uuid.uuid4()), "user", "서울 secret plans")
    )
    current = await harness.sessions.create(Owner(user_id=me))
    stub.reply = Script([StubToolCall("search_past_conversations", {"query": "서울"})])
    content = answer(await turn(harness, stub, current.id, me))["content"]
    assert "서울 맛집 목록" in content and mine.id in content
    assert "secret" not in content


async def test_forget_cannot_touch_another_users_memory(harness: Harness, stub: OpenAIStub) -> None:
    me, other = (
        await create_user(harness.db, "f1@example.com"),
        await create_user(harness.db, "f2@example.com"),
    )
    store = MemoryStore(harness.db)
    theirs = await store.add(other, MemoryDraft("fact", None, "their fact"))
    session = await harness.sessions.create(Owner(user_id=me))
    stub.reply = Script([StubToolCall("forget", {"memory_id": theirs.id})])
    message = answer(await turn(harness, stub, session.id, me))
    assert message["tools_used"][0]["ok"] is False and "No such memory" in message["content"]
    assert (await store.get(other, theirs.id)).content == "their fact"


@pytest.mark.parametrize("who", ["anonymous", "memory off"])
async def test_no_tools_for_anonymous_or_memory_off(
    harness: Harness, stub: OpenAIStub, who: str
) -> None:
    if who == "anonymous":
        session_id, user_id, memory = await harness.new_session(), None, False
    else:
        user_id = await create_user(harness.db, f"{uuid.uuid4().hex[:6]}@example.com")
        session_id = (await harness.sessions.create(Owner(user_id=user_id), memory=False)).id
        memory = False
    stub.reply = Script()
    await turn(harness, stub, session_id, user_id, memory=memory)
    assert all("tools" not in request.body for request in stub.completions)


async def test_the_tool_loop_is_bounded(harness: Harness, stub: OpenAIStub) -> None:
    user = await create_user(harness.db, "loop@example.com")
    session = await harness.sessions.create(Owner(user_id=user))
    forever = StubToolCall("search_past_conversations", {"query": "again"})
    stub.reply = Script(*[[forever]] * 10)
    message = answer(await turn(harness, stub, session.id, user))
    assert len(message["tools_used"]) == 3  # three rounds of tools, then an answer without them
    assert [("tools" in r.body) for r in stub.completions] == [True, True, True, False]


async def test_memories_are_extracted_with_structured_output(
    harness: Harness, stub: OpenAIStub
) -> None:
    from graph.remember import save_session_memories

    def reply(messages: Messages) -> str | list[StubToolCall]:
        system = str(messages[0].get("content", "")) if messages else ""
        if "extract what is worth remembering" in system:
            found = {
                "preferences": ["language: Rust"],
                "entities": ["Oslo: where the user lives"],
                "facts": ["Has a cat"],
            }
            return [StubToolCall("Extracted", found)]
        return "the user talked about Rust and Oslo"

    stub.reply = reply
    user = await create_user(harness.db, "structured@example.com")
    session = await harness.sessions.create(Owner(user_id=user), title="About me")
    said = NewMessage(str(uuid.uuid4()), "user", "I code in Rust, live in Oslo")
    await harness.journal.append(session.id, said)
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    store = MemoryStore(harness.db)
    assert await save_session_memories(model, harness.sessions, harness.journal, store, session.id)
    saved = {(m.kind, m.key, m.content) for m in await store.list(user)}
    assert ("preference", "language", "language: Rust") in saved
    assert ("entity", "oslo", "Oslo: where the user lives") in saved
    assert ("fact", None, "Has a cat") in saved
    assert any(kind == "summary" and "Rust" in content for kind, _, content in saved)
    assert stub.completions[0].body["tools"][0]["function"]["name"] == "Extracted"
