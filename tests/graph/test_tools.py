"""The agent's memory tools on the ChatOpenAI path: the real client, through the
real graph, against the local stub scripting tool calls as the OpenAI API streams them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage

from graph.errors import ModelUnavailable
from graph.llm import build_chat_model
from graph.offline import OfflineChatModel
from graph.tools import MAX_CALLS_PER_STEP, can_use_tools
from graph.turn import Turn, read_window, run_turn
from memory.journal import NewMessage
from memory.memories import MemoryDraft, MemoryNotFound, MemoryStore
from memory.models import Memory
from memory.sessions import Owner
from tests.graph.conftest import Harness
from tests.support.openai_stub import (
    Messages,
    OpenAIStub,
    StubAnswer,
    StubToolCall,
    openai_stub,
)
from tests.support.users import create_user

Round = list[StubToolCall] | StubAnswer


class Script:
    """Answer with the queued rounds of tool calls first, then with text that
    quotes the tool results the model was given."""

    def __init__(self, *rounds: Round, final: str = "done; tools said: ") -> None:
        self.rounds = list(rounds)
        self.final = final

    def __call__(self, messages: Messages) -> str | Round:
        if self.rounds:
            return self.rounds.pop(0)
        results = [m.get("content", "") for m in messages if m.get("role") == "tool"]
        return self.final + " | ".join(results)


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as running:
        yield running


async def turn(
    harness: Harness,
    stub: OpenAIStub,
    session_id: str,
    user_id: str | None,
    *,
    memory: bool = True,
    content: str = "please use your tools",
) -> list[dict[str, Any]]:
    """One turn with ChatOpenAI on the stub and the real memory store."""
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    store = MemoryStore(harness.db)
    ctx = harness.context(model=model, memories=store, memory_loader=store.load_relevant)
    query = {"id": str(uuid.uuid4()), "content": content}
    return [
        e
        async for e in run_turn(
            harness.graph, harness.db.pool, ctx, Turn(session_id, user_id, memory, query)
        )
    ]  # type: ignore[arg-type]


def answer(events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e["message"] for e in events if e["type"] == "message")


def calls_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """`tools_used` without the results and timings."""
    return [{k: u[k] for k in ("name", "args", "ok")} for u in message["tools_used"]]


def tool_events(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["name"], e["status"]) for e in events if e["type"] == "tool"]


def tool_results(request_messages: Messages) -> list[str]:
    return [str(m["content"]) for m in request_messages if m.get("role") == "tool"]


async def user_session(harness: Harness, email: str, **options: Any) -> tuple[str, str]:
    user = await create_user(harness.db, email)
    return user, (await harness.sessions.create(Owner(user_id=user), **options)).id


# -- the three tools -----------------------------------------------------------


async def test_remember_saves_a_memory_with_its_source(harness: Harness, stub: OpenAIStub) -> None:
    user, session = await user_session(harness, "tools@example.com")
    args = {"content": "prefers tea", "kind": "preference", "key": "drink"}
    stub.reply = Script([StubToolCall("remember", args)])
    events = await turn(harness, stub, session, user)
    message = answer(events)
    assert calls_of(message) == [{"name": "remember", "args": args, "ok": True}]
    assert message["tools_used"][0]["result"].startswith("Saved memory")
    assert "Saved memory" in message["content"]
    assert tool_events(events) == [("remember", "started"), ("remember", "finished")]
    assert "".join(e["content"] for e in events if e["type"] == "token") == message["content"]
    saved = await MemoryStore(harness.db).list(user, kind="preference")
    assert [(m.content, m.source_session_id) for m in saved] == [("prefers tea", session)]
    page, _ = await harness.journal.page(session)
    assert page[-1].role == "assistant" and page[-1].tools_used == message["tools_used"]
    assert "tools" in stub.completions[0].body  # offered to a logged-in user with memory on
    assert "tools" in stub.completions[1].body  # and again after a round of calls


async def test_search_finds_only_the_users_own_past_conversations(
    harness: Harness, stub: OpenAIStub
) -> None:
    me, mine = await user_session(harness, "me@example.com", title="Seoul trip")
    other, theirs = await user_session(harness, "other@example.com")
    incognito = (await harness.sessions.create(Owner(user_id=me), memory=False)).id
    for session, text in [
        (mine, "서울 맛집 목록"),
        (theirs, "서울 secret plans"),
        (incognito, "서울 incognito notes"),
    ]:
        await harness.journal.append(session, NewMessage(str(uuid.uuid4()), "user", text))
    current = (await harness.sessions.create(Owner(user_id=me))).id
    stub.reply = Script([StubToolCall("search_past_conversations", {"query": "서울"})])
    content = answer(await turn(harness, stub, current, me, content="서울 뭐라고 했지?"))["content"]
    assert "서울 맛집 목록" in content and mine in content and "Seoul trip" in content
    assert "secret" not in content  # another user's
    assert "incognito" not in content  # a memory-off session is a temporary chat
    assert "뭐라고" not in content  # this session is not a past conversation


async def test_search_matches_words_across_a_message(harness: Harness, stub: OpenAIStub) -> None:
    me, mine = await user_session(harness, "words@example.com")
    said = "We picked PostgreSQL for the ledger, mostly for its JSONB support."
    await harness.journal.append(mine, NewMessage(str(uuid.uuid4()), "user", said))
    current = (await harness.sessions.create(Owner(user_id=me))).id
    stub.reply = Script([StubToolCall("search_past_conversations", {"query": "ledger postgresql"})])
    message = answer(await turn(harness, stub, current, me))
    assert "picked PostgreSQL for the ledger" in message["content"]
    assert message["tools_used"][0]["ok"] is True


async def test_forget_deletes_a_memory_by_the_reference_the_prompt_shows(
    harness: Harness, stub: OpenAIStub
) -> None:
    me, session = await user_session(harness, "forget@example.com")
    store = MemoryStore(harness.db)
    mine = await store.add(me, MemoryDraft("fact", None, "Owns a sailboat called Ada"))
    stub.reply = Script([StubToolCall("forget", {"memory_id": "m1"})])
    message = answer(await turn(harness, stub, session, me, content="forget the sailboat"))
    system = str(stub.completions[0].messages[0]["content"])  # the system prompt
    assert "- m1: Owns a sailboat called Ada" in system and mine.id not in system
    assert calls_of(message) == [{"name": "forget", "args": {"memory_id": "m1"}, "ok": True}]
    with pytest.raises(MemoryNotFound):
        await store.get(me, mine.id)


@pytest.mark.parametrize("wrong", ["theirs", "not-a-memory-id", "x" * 300, ""])
async def test_forget_with_a_wrong_id_fails_softly_and_deletes_nothing(
    harness: Harness, stub: OpenAIStub, wrong: str
) -> None:
    me, session = await user_session(harness, f"f1-{uuid.uuid4().hex[:6]}@example.com")
    other = await create_user(harness.db, f"f2-{uuid.uuid4().hex[:6]}@example.com")
    store = MemoryStore(harness.db)
    theirs = await store.add(other, MemoryDraft("fact", None, "their fact"))
    memory_id = theirs.id if wrong == "theirs" else wrong
    stub.reply = Script([StubToolCall("forget", {"memory_id": memory_id})])
    message = answer(await turn(harness, stub, session, me))
    assert message["tools_used"][0]["ok"] is False and "No such memory" in message["content"]
    assert message["has_error"] is False  # the turn itself went fine
    assert (await store.get(other, theirs.id)).content == "their fact"


async def test_bad_calls_are_answered_with_errors_not_crashes(
    harness: Harness, stub: OpenAIStub
) -> None:
    me, session = await user_session(harness, "bad-calls@example.com")
    stub.reply = Script(
        [
            StubToolCall("remember", '{"content": tea}'),
            StubToolCall("launch_rockets", {}),
            StubToolCall("remember", {"content": "x", "kind": "gossip"}),
            StubToolCall("remember", {"content": "   "}),
        ]
    )
    message = answer(await turn(harness, stub, session, me))
    used = sorted((u["name"], u["ok"]) for u in message["tools_used"])
    assert used == [("launch_rockets", False)] + [("remember", False)] * 3
    results = " | ".join(tool_results(stub.completions[1].messages))
    assert results.count(" | ") == 3  # every call gets its answer, as the API requires
    for expected in ("not valid JSON", "Unknown tool", "Invalid arguments", "Not saved"):
        assert expected in results
    assert await MemoryStore(harness.db).list(me) == []


# -- who gets tools ------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "memory off"])
async def test_no_tools_for_anonymous_or_memory_off(
    harness: Harness, stub: OpenAIStub, who: str
) -> None:
    if who == "anonymous":
        session_id, user_id = await harness.new_session(), None
    else:
        user_id, session_id = await user_session(harness, "off@example.com", memory=False)
    stub.reply = Script()
    message = answer(await turn(harness, stub, session_id, user_id, memory=False))
    assert message["tools_used"] == [] and len(stub.completions) == 1
    assert "tools" not in stub.completions[0].body
    assert "search_past_conversations" not in str(stub.completions[0].messages)


@pytest.mark.parametrize("status", [400, 422])
async def test_a_model_that_refuses_tools_is_asked_again_without_them(
    harness: Harness, stub: OpenAIStub, status: int
) -> None:
    # A local server's model without function calling answers 400 to tools (a
    # strict server 422): a logged-in user (offered them) still gets an answer,
    # as a visitor does.
    user, session = await user_session(harness, f"notools{status}@example.com")
    stub.refuses_tools, stub.refusal_status = True, status
    stub.reply = lambda messages: "an answer without tools"
    message = answer(await turn(harness, stub, session, user, content="hello"))
    assert message["content"] == "an answer without tools" and not message["has_error"]
    assert ["tools" in r.body for r in stub.completions] == [True, False]
    assert [r.answered for r in stub.completions] == [str(status), "ok"]


async def tennis_and_a_cat(
    harness: Harness, email: str
) -> tuple[str, str, MemoryStore, Memory, Memory]:
    """A user with a thread and two memories: "I play tennis", "I have a cat"."""
    user, session = await user_session(harness, email)
    store = MemoryStore(harness.db)
    tennis = await store.add(user, MemoryDraft("fact", "sport", "User said: I play tennis"))
    cat = await store.add(user, MemoryDraft("fact", "pet", "User said: I have a cat"))
    return user, session, store, tennis, cat


def system_prompt(request: Any) -> str:
    return str(request.messages[0]["content"])


async def test_a_model_that_refuses_tools_still_forgets_what_it_is_asked_to(
    harness: Harness, stub: OpenAIStub
) -> None:
    # Without function calling the model cannot call `forget`: the request is
    # recognised as the offline model's is, the memory deleted, and the model
    # told in words what was done (no tool messages, which it may refuse too).
    user, session, store, tennis, _ = await tennis_and_a_cat(harness, "forget-notools@x.org")
    stub.refuses_tools = True
    stub.reply = lambda messages: "Done, I forgot it."
    events = await turn(harness, stub, session, user, content="Forget that I play tennis.")
    message = answer(events)
    assert message["content"] == "Done, I forgot it." and not message["has_error"]
    assert [u["name"] for u in message["tools_used"]] == ["forget"]
    with pytest.raises(MemoryNotFound):
        await store.get(user, tennis.id)
    assert [m.content for m in await store.list(user)] == ["User said: I have a cat"]
    assert [r.answered for r in stub.completions] == ["400", "ok"]
    prompt = system_prompt(stub.completions[1])
    assert "Done for this message" in prompt and "forget: Forgot memory" in prompt
    assert "I play tennis" in prompt.split("Done for this message")[1]
    assert "You have tools" not in prompt  # the answer is asked for without them
    # planning ends the turn after that pass: one answer, no second round
    plans = [p["plan"] for p in events if p.get("node") == "planning" and "plan" in p]
    assert plans == ["tools", "respond"]


async def test_a_model_that_refuses_tools_still_remembers_and_says_when_nothing_matches(
    harness: Harness, stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    user, session = await user_session(harness, "remember-notools@example.com")
    store = MemoryStore(harness.db)
    stub.refuses_tools = True
    stub.reply = lambda messages: "OK."
    message = answer(
        await turn(harness, stub, session, user, content="Remember that my sister is Ana.")
    )
    assert [u["name"] for u in message["tools_used"]] == ["remember"]
    assert [m.content for m in await store.list(user)] == ["User said: my sister is Ana"]
    assert "remember: Saved" in system_prompt(stub.completions[-1])
    message = answer(await turn(harness, stub, session, user, content="Forget that I have a boat."))
    assert message["tools_used"] == []
    assert "nothing was forgotten" in system_prompt(stub.completions[-1])
    assert len(await store.list(user)) == 1
    # said once in the log for this endpoint and model, not at every turn
    assert sum("refuses tools" in r.getMessage() for r in caplog.records) == 1


async def test_a_request_to_forget_the_model_answers_without_forgetting_is_carried_out(
    harness: Harness, stub: OpenAIStub
) -> None:
    # A weak model says it forgot but calls no tool: planning forgets by the
    # request's pattern after the answer, and the answer says what went.
    user, session, store, tennis, cat = await tennis_and_a_cat(harness, "weak-model@x.org")
    stub.reply = lambda messages: "Done, I have forgotten that."
    events = await turn(harness, stub, session, user, content="Forget that I play tennis.")
    message = answer(events)
    assert message["content"] == (
        "Done, I have forgotten that.\n\nDone. I forgot “User said: I play tennis”."
    )
    assert [u["name"] for u in message["tools_used"]] == ["forget"]
    assert [m.id for m in await store.list(user)] == [cat.id]
    with pytest.raises(MemoryNotFound):
        await store.get(user, tennis.id)
    assert len(stub.completions) == 1  # no second answer
    plans = [p["plan"] for p in events if p.get("node") == "planning" and "plan" in p]
    assert plans == ["tools", "forget", "respond"]
    # nothing matching: nothing deleted, the answer as the model gave it
    message = answer(await turn(harness, stub, session, user, content="Forget my boat."))
    assert message["content"] == "Done, I have forgotten that." and message["tools_used"] == []
    assert [m.id for m in await store.list(user)] == [cat.id]
    # an answer that took the words as talk stands, and nothing is deleted
    rome = await store.add(user, MemoryDraft("fact", None, "User said: I visited Rome last year"))
    stub.reply = lambda messages: "Rome is lovely in spring."
    asked = "Forget the weather, tell me about Rome."
    message = answer(await turn(harness, stub, session, user, content=asked))
    assert message["content"] == "Rome is lovely in spring." and message["tools_used"] == []
    await store.delete(user, rome.id)
    # a model that forgets by itself is left to it: one forget, no note
    stub.reply = Script([StubToolCall("forget", {"memory_id": "m1"})], final="Forgot it.")
    message = answer(await turn(harness, stub, session, user, content="Forget that I have a cat."))
    assert [u["name"] for u in message["tools_used"]] == ["forget"]
    assert message["content"].startswith("Forgot it.") and "I forgot “" not in message["content"]
    assert await store.list(user) == []


def test_models_that_cannot_call_tools_are_not_offered_them() -> None:
    for model in (OfflineChatModel(), GenericFakeChatModel(messages=iter(["hi"]))):
        assert not can_use_tools(model)


# -- the loop ------------------------------------------------------------------


async def test_the_tool_loop_is_bounded(harness: Harness, stub: OpenAIStub) -> None:
    user, session = await user_session(harness, "loop@example.com")
    forever = StubToolCall("search_past_conversations", {"query": "again"})
    stub.reply = Script(*[[forever]] * 10)
    events = await turn(harness, stub, session, user)
    message = answer(events)
    assert len(message["tools_used"]) == 3
    # three passes with tools, then one request without them, which must answer
    assert [("tools" in r.body) for r in stub.completions] == [True, True, True, False]
    assert len(tool_events(events)) == 2 * 3
    # the model still asked for tools, so the answer says why it ends here
    assert message["content"].startswith("I stopped after 4 steps")
    assert message["limit_reached"] is True


async def test_at_most_five_calls_run_in_a_round(harness: Harness, stub: OpenAIStub) -> None:
    user, session = await user_session(harness, "many@example.com")
    calls = [StubToolCall("remember", {"content": f"fact number {i}"}) for i in range(7)]
    stub.reply = Script(calls)
    message = answer(await turn(harness, stub, session, user))
    assert [u["ok"] for u in message["tools_used"]] == [True] * 5 + [False] * 2
    assert len(await MemoryStore(harness.db).list(user)) == MAX_CALLS_PER_STEP == 5
    assert "Not run" in tool_results(stub.completions[1].messages)[-1]


async def test_text_before_a_tool_call_streams_and_joins_the_answer(
    harness: Harness, stub: OpenAIStub
) -> None:
    user, session = await user_session(harness, "talky@example.com")
    search = StubToolCall("search_past_conversations", {"query": "nothing like it"})
    stub.reply = Script(StubAnswer("Let me look.", [search]), final="Found nothing.")
    events = await turn(harness, stub, session, user)
    content = answer(events)["content"]
    assert content.startswith("Let me look.\n\nFound nothing.")
    assert "".join(e["content"] for e in events if e["type"] == "token") == content
    kinds = [e["type"] for e in events if e["type"] in ("token", "tool")]
    assert kinds.index("tool") > kinds.index("token")  # the preamble streamed before the call
    said = stub.completions[1].messages[-2]  # the assistant's turn-local call, then the result
    assert said["role"] == "assistant" and said["tool_calls"][0]["id"]


async def test_the_window_stays_a_suffix_of_the_journal(harness: Harness, stub: OpenAIStub) -> None:
    user, session = await user_session(harness, "window@example.com")
    stub.reply = Script([StubToolCall("remember", {"content": "likes maps"})])
    await turn(harness, stub, session, user)
    stub.reply = Script([StubToolCall("search_past_conversations", {"query": "maps"})])
    await turn(harness, stub, session, user, content="second question")
    window = (await read_window(harness.graph, harness.db.pool, session))["messages"]
    page, _ = await harness.journal.page(session)
    assert [type(m) for m in window] == [HumanMessage, AIMessage] * 2
    assert not any(getattr(m, "tool_calls", None) for m in window)
    assert [m.id for m in window] == [row.id for row in page]
    # the second turn's request carried the first turn's answer, not its tool calls
    assert [m["role"] for m in stub.completions[-2].messages] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


# -- failures ------------------------------------------------------------------


@pytest.mark.parametrize("with_tools", [True, False])
async def test_a_cut_off_answer_keeps_its_text_and_its_tools(
    harness: Harness, stub: OpenAIStub, with_tools: bool
) -> None:
    user, session = await user_session(harness, f"cut-{with_tools}@example.com", memory=with_tools)
    rounds = [[StubToolCall("remember", {"content": "likes kites"})]] if with_tools else []
    stub.reply = Script(*rounds, final="one two three four five")
    stub.cut_after = 2
    events = await turn(harness, stub, session, user, memory=with_tools)
    message = answer(events)
    assert message["content"] == "one two " and message["has_error"] is True
    assert "cut off" in message["error_message"]
    assert len(message["tools_used"]) == (1 if with_tools else 0)


async def test_a_failure_after_tools_but_before_any_text_fails_the_turn(
    harness: Harness, stub: OpenAIStub
) -> None:
    user, session = await user_session(harness, "down@example.com")
    script = Script([StubToolCall("remember", {"content": "likes rain"})])

    def reply_then_fail(messages: Messages) -> str | Round:
        stub.fail(500)  # every request after this one
        return script(messages)

    stub.reply = reply_then_fail
    with pytest.raises(ModelUnavailable):
        await turn(harness, stub, session, user)
    page, _ = await harness.journal.page(session)
    assert [row.role for row in page] == ["user"]  # resending the query retries the turn
    # what a tool did stays done: here, the memory is saved
    assert [m.content for m in await MemoryStore(harness.db).list(user)] == ["likes rain"]


# -- memory extraction (graph/remember.py) uses function calling too ----------


async def test_one_structured_call_learns_new_memories_updates_and_the_summary(
    harness: Harness, stub: OpenAIStub
) -> None:
    from graph.remember import save_session_memories

    def reply(messages: Messages) -> str | list[StubToolCall]:
        prompt = " ".join(str(m.get("content", "")) for m in messages)
        assert "learn what is worth remembering" in prompt
        assert "- m1: Lives in Bergen" in prompt  # the known memory, by reference
        learned = {
            "new": [
                {"kind": "preference", "subject": "Language", "content": "Codes in Rust"},
                {"kind": "entity", "subject": "Ingrid", "content": "Ingrid is the user's daughter"},
            ],
            "updates": [{"ref": "m1", "content": "Lives in Oslo"}, {"ref": "m9", "content": "x"}],
            "summary": "The user moved to Oslo and codes in Rust.",
        }
        return [StubToolCall("Learned", learned)]

    stub.reply = reply
    user = await create_user(harness.db, "structured@example.com")
    store = MemoryStore(harness.db)
    old = await harness.sessions.create(Owner(user_id=user))
    bergen = await store.add(
        user, MemoryDraft("fact", "home", "Lives in Bergen"), source_session_id=old.id
    )
    session = await harness.sessions.create(Owner(user_id=user), title="About me")
    said = "I code in Rust; my daughter Ingrid and I just moved from Bergen to Oslo"
    await harness.journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", said))
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    assert await save_session_memories(model, store, session.id)
    assert len(stub.completions) == 1  # facts, updates and the summary in one call
    assert stub.completions[0].body["tools"][0]["function"]["name"] == "Learned"
    saved = {(m.kind, m.key, m.content) for m in await store.list(user)}
    assert ("preference", "language", "Codes in Rust") in saved
    assert ("entity", "ingrid", "Ingrid is the user's daughter") in saved
    moved = await store.get(user, bergen.id)  # superseded in place, learned here now
    assert (moved.content, moved.source_session_id) == ("Lives in Oslo", session.id)
    summaries = [m for m in await store.list(user, kind="summary")]
    assert [m.content for m in summaries] == [
        "Conversation “About me”:\nThe user moved to Oslo and codes in Rust."
    ]


async def test_a_model_that_calls_no_function_still_has_the_user_remembered(
    harness: Harness, stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    # Many OpenAI-compatible servers' models answer the learning call in plain
    # text: the save learns by pattern instead, and is done, not owed forever.
    from graph.remember import save_session_memories

    stub.reply = lambda messages: "Sure! The user is called Marta and lives in Porto."
    user = await create_user(harness.db, "plain@example.com")
    session = await harness.sessions.create(Owner(user_id=user))
    said = "Hi, I'm Marta and I live in Porto. My dog is called Rex."
    await harness.journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", said))
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    store = MemoryStore(harness.db)
    assert await save_session_memories(model, store, session.id)
    learned = {m.content for m in await store.list(user) if m.kind != "summary"}
    assert learned == {
        "User said: I'm Marta",
        "User said: I live in Porto",
        "User said: My dog is called Rex",
    }
    assert (await harness.sessions.get(session.id)).memory_saved_seq == 1
    for broken in ("{not json", {"new": "not a list"}):  # a call, but not the schema's
        stub.reply = lambda messages, broken=broken: [StubToolCall("Learned", broken)]
        said = f"I work at the harbour, shift {broken!r}."
        await harness.journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", said))
        assert await save_session_memories(model, store, session.id)
    stub.refuses_tools = True  # 400 to the function itself
    await harness.journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "I'm 41."))
    assert await save_session_memories(model, store, session.id)
    assert (await harness.sessions.get(session.id)).memory_saved_seq == 4
    assert "User said: I'm 41" in {m.content for m in await store.list(user)}
    stub.refusal_status = 422  # a strict server's refusal
    await harness.journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "I'm a cook."))
    assert await save_session_memories(model, store, session.id)
    assert "User said: I'm a cook" in {m.content for m in await store.list(user)}
    # five saves learned by pattern, said once in the log, not at every save
    assert sum("structured lessons" in r.getMessage() for r in caplog.records) == 1


async def test_a_conversation_with_nothing_worth_keeping_gets_no_summary(
    harness: Harness, stub: OpenAIStub
) -> None:
    from graph.remember import save_session_memories

    stub.reply = lambda messages: [
        StubToolCall("Learned", {"new": [], "updates": [], "summary": ""})
    ]
    user = await create_user(harness.db, "trivia@example.com")
    session = await harness.sessions.create(Owner(user_id=user))
    await harness.journal.append(session.id, NewMessage(str(uuid.uuid4()), "user", "hi!"))
    model = build_chat_model(api_key=None, base_url=stub.base_url, model="stub", max_retries=0)
    store = MemoryStore(harness.db)
    await save_session_memories(model, store, session.id)
    assert await store.list(user) == []
    assert (await harness.sessions.get(session.id)).memory_saved_seq == 1  # done, not owed
