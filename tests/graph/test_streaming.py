"""A model's stream stops the moment the user cancels (graph/streaming.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

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
