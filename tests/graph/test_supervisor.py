"""The supervisor loop: planning decides, execution takes one step, the graph
loops back to planning after each tool step (graph/nodes.py, graph/planner.py).

Offline, planning recognises memory requests and runs the tool itself; with the
local OpenAI-compatible stub, the model chooses its tools pass by pass."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from graph.builder import build_graph
from graph.errors import ModelUnavailable
from graph.llm import build_chat_model
from graph.offline import OfflineChatModel
from graph.planner import Situation, decide
from graph.turn import Turn, read_window, run_turn
from memory.journal import NewMessage
from memory.memories import MemoryDraft, MemoryStore
from memory.sessions import Owner
from tests.graph.conftest import Harness
from tests.support.openai_stub import Messages, OpenAIStub, StubToolCall, openai_stub
from tests.support.users import create_user


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as running:
        yield running


async def user_session(harness: Harness, *, memory: bool = True) -> tuple[str, str]:
    user = await create_user(harness.db, f"loop-{uuid.uuid4().hex[:8]}@example.com")
    return user, (await harness.sessions.create(Owner(user_id=user), memory=memory)).id


def events_of(
    harness: Harness,
    session_id: str,
    user_id: str | None,
    content: str,
    *,
    memory: bool = True,
    query_id: str | None = None,
    **ctx: Any,
) -> AsyncIterator[dict[str, Any]]:
    store = MemoryStore(harness.db)
    context = harness.context(memories=store, memory_loader=store.load_relevant, **ctx)
    query = {"id": query_id or str(uuid.uuid4()), "content": content}
    turn = Turn(session_id, user_id, memory and user_id is not None, query)  # type: ignore[arg-type]
    return run_turn(harness.graph, harness.db.pool, context, turn)


async def ask(harness: Harness, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return [e async for e in events_of(harness, *args, **kwargs)]


def route(events: list[dict[str, Any]]) -> list[str]:
    return [e["node"] for e in events if e["type"] == "progress" and e["status"] == "finished"]


def plans(events: list[dict[str, Any]]) -> list[str]:
    return [e["plan"] for e in events if e["type"] == "progress" and "plan" in e]


def message_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e["message"] for e in events if e["type"] == "message")


LOOP = ["initialize", "planning", "execution", "planning", "execution", "response"]
STRAIGHT = ["initialize", "planning", "execution", "response"]


# -- offline: planning recognises the request and runs the tool --------------


async def test_offline_search_walks_the_loop_and_quotes_the_found_message(
    harness: Harness,
) -> None:
    user, earlier = await user_session(harness)
    said = "The heron nests by the old mill every spring."
    await harness.journal.append(earlier, NewMessage(str(uuid.uuid4()), "user", said))
    current = (await harness.sessions.create(Owner(user_id=user))).id
    events = await ask(harness, current, user, "Search my past conversations for heron")
    assert route(events) == LOOP
    assert plans(events) == ["search", "answer"]
    message = message_of(events)
    [used] = message["tools_used"]
    assert used["name"] == "search_past_conversations" and used["args"] == {"query": "heron"}
    assert used["ok"] is True and said in used["result"] and used["ms"] >= 0
    assert said in message["content"] and message["content"].startswith("[offline model]")
    # the steps are kept on the journaled answer, as the route ran
    assert [s["node"] for s in message["steps"]] == LOOP[:-1]
    assert [s.get("plan") for s in message["steps"] if s["node"] == "planning"] == [
        "search",
        "answer",
    ]
    assert message["plan"] == "answer"
    tools = [e for e in events if e["type"] == "tool"]
    assert [(t["name"], t["status"]) for t in tools] == [
        ("search_past_conversations", "started"),
        ("search_past_conversations", "finished"),
    ]
    # the window holds the question and the answer, never the tool call
    window = (await read_window(harness.graph, harness.db.pool, current))["messages"]
    page, _ = await harness.journal.page(current)
    assert [m.id for m in window] == [row.id for row in page]
    assert window[-1].content == message["content"]


@pytest.mark.parametrize(
    "question",
    [
        "what did we say about the heron?",
        "did I ever mention the heron",
        "Look through our previous chats for heron.",
    ],
)
async def test_other_ways_of_asking_to_search(harness: Harness, question: str) -> None:
    user, current = await user_session(harness)
    events = await ask(harness, current, user, question)
    assert plans(events) == ["search", "answer"]
    assert message_of(events)["tools_used"][0]["args"]["query"].endswith("heron")
    assert "found nothing" in message_of(events)["content"]


@pytest.mark.parametrize("who", ["anonymous", "memory off"])
async def test_anonymous_and_memory_off_never_plan_a_memory_tool(
    harness: Harness, who: str
) -> None:
    if who == "anonymous":
        user, session = None, await harness.new_session()
    else:
        user, session = await user_session(harness, memory=False)
    for question in (
        "search my past conversations for heron",
        "remember that my dentist is Dr. Chen",
        "forget that I live in Paris",
    ):
        events = await ask(harness, session, user, question, memory=False)
        assert route(events) == STRAIGHT and plans(events) == ["answer"]
        assert message_of(events)["tools_used"] == []
        assert not [e for e in events if e["type"] in ("tool", "memory_loaded")]
    if user is not None:
        assert await MemoryStore(harness.db).list(user) == []


async def test_offline_remember_saves_once_even_when_the_turn_runs_again(
    harness: Harness,
) -> None:
    user, session = await user_session(harness)
    store = MemoryStore(harness.db)

    class FailsOnce(OfflineChatModel):
        """The model dies on the answer pass the first time (as a crash would)."""

        failed: bool = False

        async def _astream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if not self.failed:
                self.failed = True
                raise ConnectionError("model went away")
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk

    model, query_id = FailsOnce(), str(uuid.uuid4())
    question = "Remember that my dentist is Dr. Sarah Chen."
    with pytest.raises(ModelUnavailable):
        await ask(harness, session, user, question, query_id=query_id, model=model)
    assert [m.content for m in await store.list(user)] == [
        "User said: my dentist is Dr. Sarah Chen"
    ]
    events = await ask(harness, session, user, question, query_id=query_id, model=model)
    assert route(events) == LOOP and plans(events) == ["remember", "answer"]
    message = message_of(events)
    assert "I will remember that: my dentist is Dr. Sarah Chen" in message["content"]
    assert len(await store.list(user)) == 1  # the rerun found it saved
    page, _ = await harness.journal.page(session)
    assert [row.role for row in page] == ["user", "assistant"]


async def test_offline_remember_of_a_known_kind_is_keyed(harness: Harness) -> None:
    user, session = await user_session(harness)
    await ask(harness, session, user, "remember that my name is Theodora")
    [saved] = await MemoryStore(harness.db).list(user)
    assert (saved.kind, saved.key, saved.source_session_id) == ("fact", "name", session)


async def test_offline_forget_deletes_the_matching_memory(harness: Harness) -> None:
    user, session = await user_session(harness)
    store = MemoryStore(harness.db)
    paris = await store.add(user, MemoryDraft("fact", "location", "User said: I live in Paris"))
    kept = await store.add(user, MemoryDraft("fact", None, "User said: I have a cat named Tom"))
    events = await ask(harness, session, user, "Please forget that I live in Paris.")
    assert route(events) == LOOP and plans(events) == ["forget", "answer"]
    message = message_of(events)
    assert message["tools_used"][0]["args"] == {"memory_id": paris.id}
    assert "I forgot “User said: I live in Paris”" in message["content"]
    assert [m.id for m in await store.list(user)] == [kept.id]
    # nothing left that matches: no tool step, and the answer says so
    events = await ask(harness, session, user, "forget that I live in Paris")
    assert route(events) == STRAIGHT
    assert "no saved memory matching" in message_of(events)["content"]
    assert [m.id for m in await store.list(user)] == [kept.id]
    # one word of the request in common is not it: "Tom" is not "the weather"
    events = await ask(harness, session, user, "Forget the weather, tell me about Tom.")
    assert route(events) == STRAIGHT and message_of(events)["tools_used"] == []
    assert [m.id for m in await store.list(user)] == [kept.id]
    # everything at once: no memory goes, and the answer says how to
    events = await ask(harness, session, user, "Actually, forget everything you know about me.")
    assert route(events) == STRAIGHT and message_of(events)["tools_used"] == []
    assert "I forget one memory at a time" in message_of(events)["content"]
    assert [m.id for m in await store.list(user)] == [kept.id]


def test_a_question_about_remembering_is_not_a_request_to_remember() -> None:
    state: Any = {"query": {"id": "q", "content": "do you remember my name?"}}
    situation = Situation(memory_tools=True, model_picks_tools=False, max_steps=4, cancelled=False)
    assert decide(state, situation)["step"] == "answer"


# -- with a model that calls tools: the model chooses, planning bounds it -----


async def test_two_rounds_of_tool_calls_then_text(harness: Harness, stub: OpenAIStub) -> None:
    user, session = await user_session(harness)
    rounds = [
        [StubToolCall("search_past_conversations", {"query": "kites"})],
        [StubToolCall("remember", {"content": "likes kites"})],
    ]

    def script(messages: Messages) -> str | list[StubToolCall]:
        return rounds.pop(0) if rounds else "All done."

    stub.reply = script
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    events = await ask(harness, session, user, "sort out my kites", model=model)
    assert route(events) == [
        "initialize",
        *["planning", "execution"] * 3,
        "response",
    ]
    assert plans(events) == ["tools", "tools", "tools"]
    passes = [e for e in events if e.get("node") == "execution" and e["status"] == "finished"]
    assert [(p["pass"], p["tools"]) for p in passes] == [
        (1, ["search_past_conversations"]),
        (2, ["remember"]),
        (3, []),
    ]
    message = message_of(events)
    assert message["content"] == "All done." and message["limit_reached"] is False
    assert [u["name"] for u in message["tools_used"]] == ["search_past_conversations", "remember"]
    assert len(stub.completions) == 3 and len(await MemoryStore(harness.db).list(user)) == 1
    # each request carried the turn's calls and results so far
    assert [m["role"] for m in stub.completions[2].messages][-4:] == [
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]


async def test_the_step_limit_is_a_setting(harness: Harness, stub: OpenAIStub) -> None:
    user, session = await user_session(harness)
    stub.reply = lambda messages: [StubToolCall("search_past_conversations", {"query": "x"})]
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    events = await ask(harness, session, user, "loop forever", model=model, max_steps=2)
    assert plans(events) == ["tools", "answer"]
    message = message_of(events)
    assert message["limit_reached"] is True and "stopped after 2 steps" in message["content"]
    assert [("tools" in r.body) for r in stub.completions] == [True, False]


# -- cancel ----------------------------------------------------------------


async def test_cancel_during_a_tool_step_stops_at_the_step_boundary(
    harness: Harness, stub: OpenAIStub, database_url: str
) -> None:
    user, session = await user_session(harness)
    stub.reply = lambda messages: [
        StubToolCall("remember", {"content": "first thing"}),
        StubToolCall("remember", {"content": "second thing"}),
    ]
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    cancel = asyncio.Event()
    # Hold the memories table so the first `remember` waits inside its step.
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute("LOCK TABLE memories IN EXCLUSIVE MODE")
        events = []
        async for event in events_of(
            harness, session, user, "note two things", model=model, cancel=cancel
        ):
            events.append(event)
            if event["type"] == "tool" and event["status"] == "started":
                cancel.set()
                await holder.commit()  # the step may finish now
    message = message_of(events)
    assert message["cancelled"] is True
    assert [(u["name"], u["args"]["content"]) for u in message["tools_used"]] == [
        ("remember", "first thing")
    ]
    assert [m.content for m in await MemoryStore(harness.db).list(user)] == ["first thing"]
    assert len(stub.completions) == 1  # no model call after the cancel
    assert route(events)[-2:] == ["planning", "response"] and plans(events)[-1] == "respond"


async def test_cancel_during_the_final_stream_keeps_what_was_said(harness: Harness) -> None:
    user, earlier = await user_session(harness)
    await harness.journal.append(
        earlier, NewMessage(str(uuid.uuid4()), "user", "the heron " + "and more words " * 30)
    )
    current = (await harness.sessions.create(Owner(user_id=user))).id
    cancel, events = asyncio.Event(), []
    async for event in events_of(
        harness,
        current,
        user,
        "search my past conversations for heron",
        model=OfflineChatModel(token_delay_ms=5),
        cancel=cancel,
    ):
        events.append(event)
        if event["type"] == "token":
            cancel.set()
    message = message_of(events)
    tokens = "".join(e["content"] for e in events if e["type"] == "token")
    assert message["cancelled"] is True and message["content"] == tokens
    assert message["tools_used"][0]["name"] == "search_past_conversations"
    assert 0 < len(message["content"]) < 100


# -- the design document shows the compiled graph ------------------------------


def test_the_documented_diagram_is_the_compiled_graph() -> None:
    from pathlib import Path

    design = (Path(__file__).parents[2] / "docs" / "design.md").read_text()
    mermaid = build_graph().get_graph().draw_mermaid().strip()
    assert mermaid in design, "regenerate the diagram: python -m graph.diagram"
