"""A model's stream stops the moment the user cancels (graph/streaming.py), and
the streamed draft gathers what the model said (graph/draft.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.messages.tool import tool_call_chunk

from graph.context import TurnContext
from graph.draft import stream_reply
from graph.state import Draft
from graph.streaming import run_until_cancelled

WAIT_S = 5.0  # a bound for the test, never reached when the code is right


async def test_a_cancel_stops_work_where_it_waits() -> None:
    cancel, started, closed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stalled() -> str:
        started.set()
        try:
            await asyncio.Event().wait()  # a stream whose next token never comes
        finally:
            closed.set()
        return "never"

    running = asyncio.ensure_future(run_until_cancelled(stalled(), cancel))
    await asyncio.wait_for(started.wait(), WAIT_S)
    cancel.set()
    assert await asyncio.wait_for(running, WAIT_S) is None
    assert closed.is_set()  # cancelled inside its wait, so its cleanup ran


async def test_work_that_ends_gives_its_result_or_its_error() -> None:
    async def answer() -> str:
        return "done"

    async def broken() -> str:
        raise ValueError("the model failed")

    cancel = asyncio.Event()
    assert await run_until_cancelled(answer(), cancel) == "done"
    assert await run_until_cancelled(answer(), None) == "done"
    with pytest.raises(ValueError, match="the model failed"):
        await run_until_cancelled(broken(), cancel)
    assert not cancel.is_set()


async def test_work_asked_after_a_cancel_never_starts() -> None:
    ran = False

    async def work() -> str:
        nonlocal ran
        ran = True
        return "ran"

    cancel = asyncio.Event()
    cancel.set()
    assert await run_until_cancelled(work(), cancel) is None
    assert not ran


async def test_a_stream_cancelled_mid_way_is_closed() -> None:
    cancel, closed, seen = asyncio.Event(), asyncio.Event(), []

    async def tokens() -> AsyncIterator[str]:
        try:
            yield "first"
            await asyncio.Event().wait()  # stalls before its second token
            yield "second"
        finally:
            closed.set()

    async def read() -> int:
        async for token in tokens():
            seen.append(token)
            cancel.set()
        return len(seen)

    assert await asyncio.wait_for(run_until_cancelled(read(), cancel), WAIT_S) is None
    assert seen == ["first"] and closed.is_set()


class ChunkedModel:
    """A model that streams the given chunks, then stalls when `stall` is set."""

    def __init__(self, chunks: list[AIMessageChunk], stall: bool = False) -> None:
        self.chunks, self.stall = chunks, stall

    async def astream(self, messages: Any) -> AsyncIterator[AIMessageChunk]:
        for chunk in self.chunks:
            yield chunk
        if self.stall:
            await asyncio.Event().wait()


def new_draft() -> Draft:
    return {"content": "", "token_count": 0, "error_message": None, "limit_reached": False}


async def test_the_reply_is_every_chunk_joined() -> None:
    """Text, a tool call streamed in pieces and the usage, as one message: what
    adding the chunks one by one gives (joined once, at the end)."""
    chunks = [
        AIMessageChunk(content="Let me ", id="lc_run-1"),
        AIMessageChunk(
            content="look.",
            tool_call_chunks=[tool_call_chunk(name="search", args='{"q', id="c1", index=0)],
        ),
        AIMessageChunk(content="", tool_call_chunks=[tool_call_chunk(args='": "Oslo"}', index=0)]),
        AIMessageChunk(
            content="", usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
        ),
    ]
    one_by_one = chunks[0]
    for chunk in chunks[1:]:
        one_by_one = one_by_one + chunk
    ctx, written, draft = (
        cast(TurnContext, SimpleNamespace(cancel=asyncio.Event())),
        [],
        new_draft(),
    )
    reply = await stream_reply(cast(Any, ChunkedModel(chunks)), [], ctx, written.append, draft)
    assert reply == one_by_one
    assert reply is not None and reply.tool_calls == [
        {"name": "search", "args": {"q": "Oslo"}, "id": "c1", "type": "tool_call"}
    ]
    assert draft["content"] == "Let me look." and draft["token_count"] == 3
    assert [event["content"] for event in written] == ["Let me ", "look."]


async def test_a_cancelled_reply_is_what_came_before_the_cancel() -> None:
    cancel = asyncio.Event()
    ctx, draft = cast(TurnContext, SimpleNamespace(cancel=cancel)), new_draft()
    model = ChunkedModel(
        [AIMessageChunk(content="Half "), AIMessageChunk(content="an answer")], stall=True
    )

    def write(event: dict[str, Any]) -> None:
        if event["content"] == "an answer":
            cancel.set()  # the user cancels while the model is stalled

    reply = await asyncio.wait_for(stream_reply(cast(Any, model), [], ctx, write, draft), WAIT_S)
    assert reply is not None and reply.content == "Half an answer"
    assert draft["content"] == "Half an answer"
    quiet = cast(TurnContext, SimpleNamespace(cancel=asyncio.Event()))
    nothing = await stream_reply(cast(Any, ChunkedModel([])), [], quiet, write, new_draft())
    assert nothing is None
