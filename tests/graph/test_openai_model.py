"""The real `ChatOpenAI` client, as `graph.llm` builds it, through the real graph,
against a local OpenAI-compatible stub: streaming, context, usage, and failures."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from graph.errors import ModelUnavailable
from graph.llm import build_chat_model
from graph.nodes import answer_id_for
from graph.offline import OfflineChatModel, estimate_tokens
from graph.prompts import SYSTEM_PROMPT
from graph.turn import Turn, run_turn
from tests.graph.conftest import Harness
from tests.support.openai_stub import OpenAIStub, closed_port_url, openai_stub


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as server:
        yield server


def chat_model(base_url: str, *, timeout_s: float = 10.0, max_retries: int = 1) -> BaseChatModel:
    return build_chat_model(
        api_key=None,
        base_url=base_url,
        model="stub-model",
        timeout_s=timeout_s,
        max_retries=max_retries,
    )


async def run(
    harness: Harness, session_id: str, content: str, query_id: str
) -> tuple[list[dict[str, Any]], BaseException | None]:
    """The events of a turn up to its end or its error, and that error."""
    turn = Turn(session_id, None, False, {"id": query_id, "content": content})
    events: list[dict[str, Any]] = []
    try:
        async for event in run_turn(harness.graph, harness.db.pool, harness.context(), turn):
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


async def journaled(harness: Harness, session_id: str) -> list[tuple[str, str]]:
    page, _ = await harness.journal.page(session_id, limit=100)
    return [(m.id, m.role) for m in page]


# -- the factory -----------------------------------------------------------------


def test_factory_without_key_or_url_is_the_offline_model() -> None:
    model = build_chat_model(api_key=None, base_url=None, model="gpt-whatever")
    assert isinstance(model, OfflineChatModel)


async def test_the_offline_model_counts_usage_once_with_its_last_chunk() -> None:
    """As real models do: the estimate of the prompt and of the reply it streams,
    the same whether streamed or not."""
    model = OfflineChatModel()
    messages = [SystemMessage(SYSTEM_PROMPT), HumanMessage("my name is Ada and I live in Oslo")]
    chunks = [chunk async for chunk in model.astream(messages)]
    usages = [chunk.usage_metadata for chunk in chunks if chunk.usage_metadata is not None]
    assert len(chunks) > 1 and len(usages) == 1
    whole = await model.ainvoke(messages)
    assert usages == [whole.usage_metadata]
    assert whole.usage_metadata is not None
    assert whole.usage_metadata["output_tokens"] == estimate_tokens(str(whole.content))
    prompt = sum(estimate_tokens(str(m.content)) for m in messages)
    assert whole.usage_metadata["input_tokens"] == prompt


def test_factory_with_a_url_is_chat_openai_with_its_limits(stub: OpenAIStub) -> None:
    model = chat_model(stub.base_url, timeout_s=3.5, max_retries=2)
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_base == stub.base_url
    assert model.model_name == "stub-model"
    assert model.request_timeout == 3.5 and model.max_retries == 2
    assert model.streaming is True and model.stream_usage is True
    assert model.openai_api_key is not None  # a placeholder: the client insists on one


def test_factory_with_only_a_key_is_chat_openai() -> None:
    model = build_chat_model(api_key="sk-test", base_url=None, model="gpt-4o-mini")
    assert isinstance(model, ChatOpenAI)
    assert isinstance(model.openai_api_key, SecretStr)
    assert model.openai_api_key.get_secret_value() == "sk-test"


async def test_stub_serves_plain_and_streamed_completions(stub: OpenAIStub) -> None:
    stub.usage = (3, 5)
    streamed = await chat_model(stub.base_url).ainvoke("ping")  # streaming=True: it streams
    assert streamed.content == "stub says: ping"
    plain = ChatOpenAI(model="stub-model", api_key=SecretStr("x"), base_url=stub.base_url)
    answer = await plain.ainvoke("pong")
    assert answer.content == "stub says: pong"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] == 5
    assert [r.body.get("stream", False) for r in stub.completions] == [True, False]


# -- a turn through the real client ----------------------------------------------


async def test_tokens_stream_through_the_real_client(harness: Harness, stub: OpenAIStub) -> None:
    stub.usage = (321, 4242)  # unlike any estimate, so the count must come from the stub
    stub.chunk_delay_s = 0.005
    stub.reply = lambda messages: (
        f"I have {len(messages)} messages in view, and your latest says: {messages[-1]['content']}"
    )
    harness.model = chat_model(stub.base_url)
    session_id = await harness.new_session()
    await harness.ask(session_id, "my name is Ada and I write programs")
    first_answer = (await harness.journal.tail(session_id, 1))[-1].content

    events = await harness.ask(session_id, "what is my name?")

    tokens = [e["content"] for e in events if e["type"] == "token"]
    message = next(e["message"] for e in events if e["type"] == "message")
    last = (await harness.journal.tail(session_id, 1))[-1]
    assert last is not None and last.role == "assistant" and last.id == message["id"]
    assert len(tokens) >= 5
    assert "".join(tokens) == message["content"] == last.content
    assert last.content == "I have 4 messages in view, and your latest says: what is my name?"
    assert last.token_count == 4242 and message["token_count"] == 4242
    assert last.has_error is False

    request = stub.completions[-1]
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["model"] == "stub-model"
    roles = [m["role"] for m in request.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert request.messages[0]["content"].startswith(SYSTEM_PROMPT)
    assert request.messages[1]["content"] == "my name is Ada and I write programs"
    assert request.messages[2]["content"] == first_answer
    assert request.messages[3]["content"] == "what is my name?"
    assert request.headers["authorization"] == "Bearer not-needed"
    assert len(stub.completions) == 2  # one call per turn: nothing was retried


async def test_an_endpoint_that_refuses_stream_options_is_asked_again_without(
    harness: Harness, stub: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    # Azure's older API versions, Mistral and xAI refuse `stream_options`: every
    # turn failed with "its server answered with an error (400)".
    stub.refuses_stream_options = True
    harness.model = chat_model(stub.base_url)
    session_id = await harness.new_session()
    for question in ("hello", "and again"):
        await harness.ask(session_id, question)
        last = (await harness.journal.tail(session_id, 1))[-1]
        assert last.content == f"stub says: {question}" and not last.has_error
        assert last.token_count == estimate_tokens(last.content)  # no usage to read
    # the first call asked, was refused, and asked again; none asked after
    assert [("stream_options" in r.body, r.answered) for r in stub.completions] == [
        (True, "400"),
        (False, "ok"),
        (False, "ok"),
    ]
    warned = [r.getMessage() for r in caplog.records if "stream_options" in r.getMessage()]
    assert warned == ["the model stub-model refuses stream_options: token counts are estimated"]


async def test_a_transient_500_is_retried_within_the_turn(
    harness: Harness, stub: OpenAIStub
) -> None:
    stub.fail(500, times=1)
    harness.model = chat_model(stub.base_url, max_retries=1)
    session_id = await harness.new_session()
    query_id = str(uuid.uuid4())
    events, error = await run(harness, session_id, "are you there?", query_id)
    assert error is None
    assert [r.answered for r in stub.completions] == ["500", "ok"]
    assert await journaled(harness, session_id) == [
        (query_id, "user"),
        (answer_id_for(query_id), "assistant"),
    ]
    assert "".join(e["content"] for e in events if e["type"] == "token") == (
        "stub says: are you there?"
    )


# -- model failures: the turn fails, the user message stays, a resend retries ---------


async def fails_with_model_unavailable(harness: Harness) -> tuple[str, str]:
    """Run a turn that must fail with ModelUnavailable; check what stays journaled."""
    session_id = await harness.new_session()
    query_id = str(uuid.uuid4())
    started = time.monotonic()
    events, error = await run(harness, session_id, "hello, model?", query_id)
    elapsed = time.monotonic() - started
    assert isinstance(error, ModelUnavailable), repr(error)
    assert error.code == "model_unavailable"
    assert elapsed < 15, f"the failure took {elapsed:.1f}s: retries are not bounded"
    kinds = [e["type"] for e in events]
    assert "ack" in kinds and "message" not in kinds and "token" not in kinds
    ack = next(e for e in events if e["type"] == "ack")
    assert ack["id"] == query_id and ack["seq"] == 1
    assert await journaled(harness, session_id) == [(query_id, "user")]
    assert (await harness.sessions.get(session_id)).message_count == 1
    return session_id, query_id


async def resend_answers_once(
    harness: Harness, stub: OpenAIStub, session_id: str, query_id: str
) -> None:
    """Resending the same query id runs the cut-off turn: one user, one assistant."""
    events, error = await run(harness, session_id, "hello, model?", query_id)
    assert error is None, repr(error)
    ack = next(e for e in events if e["type"] == "ack")
    assert ack["id"] == query_id and ack["seq"] == 1
    tokens = "".join(e["content"] for e in events if e["type"] == "token")
    message = next(e["message"] for e in events if e["type"] == "message")
    assert tokens == message["content"] == "stub says: hello, model?"
    assert await journaled(harness, session_id) == [
        (query_id, "user"),
        (answer_id_for(query_id), "assistant"),
    ]
    assert (await harness.sessions.get(session_id)).message_count == 2
    # The model saw the user message once: the window was not doubled by the retry.
    request = stub.completions[-1]
    assert [m["role"] for m in request.messages] == ["system", "user"]
    assert request.messages[1]["content"] == "hello, model?"


async def test_429_on_every_call_fails_the_turn_after_bounded_retries(
    harness: Harness, stub: OpenAIStub
) -> None:
    stub.fail(429)  # every call, until recovered
    harness.model = chat_model(stub.base_url, max_retries=2)
    session_id, query_id = await fails_with_model_unavailable(harness)
    assert [r.answered for r in stub.completions] == ["429"] * 3  # one call + two retries

    stub.recover()
    stub.reset()
    await resend_answers_once(harness, stub, session_id, query_id)
    assert len(stub.completions) == 1


async def test_connection_refused_fails_the_turn_then_the_server_comes_back(
    harness: Harness,
) -> None:
    base_url = closed_port_url()
    harness.model = chat_model(base_url, max_retries=1)
    session_id, query_id = await fails_with_model_unavailable(harness)

    port = urlsplit(base_url).port
    with openai_stub(port=port) as stub:  # the same address, now answering
        assert stub.base_url == base_url
        await resend_answers_once(harness, stub, session_id, query_id)
        assert len(stub.completions) == 1


async def test_a_hanging_model_times_out_after_bounded_retries(
    harness: Harness, stub: OpenAIStub
) -> None:
    stub.hang(30)
    harness.model = chat_model(stub.base_url, timeout_s=0.5, max_retries=1)
    session_id, query_id = await fails_with_model_unavailable(harness)
    assert [r.answered for r in stub.completions] == ["hang"] * 2  # one call + one retry

    stub.recover()
    stub.reset()
    await resend_answers_once(harness, stub, session_id, query_id)
    assert len(stub.completions) == 1


async def test_after_two_failed_turns_the_model_sees_alternating_roles(
    harness: Harness, stub: OpenAIStub
) -> None:
    """Chat templates that require user/assistant alternation must not reject a
    thread whose earlier turns failed; the failures are told in words."""
    harness.model = chat_model(stub.base_url, max_retries=0)
    session_id = await harness.new_session()
    stub.fail(500, times=2)
    for question in ("first, failing", "second, failing"):
        _, error = await run(harness, session_id, question, str(uuid.uuid4()))
        assert isinstance(error, ModelUnavailable)
        assert "its server answered with an error (500)" in str(error)
    events, error = await run(harness, session_id, "third, answered", str(uuid.uuid4()))
    assert error is None, repr(error)
    roles = [m["role"] for m in stub.completions[-1].messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    notes = [m["content"] for m in stub.completions[-1].messages if m["role"] == "assistant"]
    assert all("No answer was given" in note for note in notes)
    # the journal holds what happened, the notes are the prompt's alone
    assert [role for _, role in await journaled(harness, session_id)] == [
        "user",
        "user",
        "user",
        "assistant",
    ]


async def test_a_cut_stream_is_labelled_in_words(harness: Harness, stub: OpenAIStub) -> None:
    harness.model = chat_model(stub.base_url, max_retries=0)
    stub.reply = lambda messages: "one two three four five"
    stub.cut_after = 2
    events, error = await run(harness, await harness.new_session(), "go", str(uuid.uuid4()))
    assert error is None
    message = next(e["message"] for e in events if e["type"] == "message")
    assert message["error_message"] == "The answer was cut off: the connection to it was lost."
