"""A process runs at most `graph_slots` graphs at once: a turn past them is
journaled and acknowledged at once, then waits for a slot, and runs in full."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from memory.sessions import Owner
from threads.events import Watcher
from threads.runtime import Runtime

if TYPE_CHECKING:  # the fixture's type, not the conftest module itself
    from tests.threads.conftest import OpenRuntime


@pytest.fixture
async def one_slot(runtime_with: OpenRuntime) -> AsyncIterator[Runtime]:
    async with runtime_with(graph_slots=1) as opened:
        yield opened


async def frames_until_done(
    watcher: Watcher, log: list[tuple[str, str]], name: str, streaming: asyncio.Event
) -> None:
    """Record (thread, frame type) in the order frames arrive, across watchers;
    `streaming` is set at the thread's first token."""
    while True:
        frame: dict[str, Any] = await asyncio.wait_for(watcher.queue.get(), 30)
        log.append((name, frame["type"]))
        if frame["type"] == "token":
            streaming.set()
        if frame["type"] in ("done", "error"):
            return


async def test_a_turn_past_the_slots_is_acknowledged_then_waits_for_one(
    one_slot: Runtime,
) -> None:
    first, second = [
        await one_slot.deps.sessions.create(Owner(anon_token_hash=uuid.uuid4().hex * 2))
        for _ in range(2)
    ]
    watchers = {"first": one_slot.threads.watch(first), "second": one_slot.threads.watch(second)}
    log: list[tuple[str, str]] = []
    streaming = {name: asyncio.Event() for name in watchers}
    following = [
        asyncio.create_task(frames_until_done(w, log, name, streaming[name]))
        for name, w in watchers.items()
    ]

    await one_slot.threads.ask(first, {"id": str(uuid.uuid4()), "content": "tell me a story"})
    await asyncio.wait_for(streaming["first"].wait(), 30)  # it holds the slot, streaming
    await one_slot.threads.ask(second, {"id": str(uuid.uuid4()), "content": "and another"})
    await asyncio.gather(*following)

    second_ack = log.index(("second", "ack"))
    first_answered = log.index(("first", "message"))  # its graph's last frame
    second_start = log.index(("second", "progress"))
    assert second_ack < first_answered, log  # acknowledged while the first still ran
    assert first_answered < second_start, log  # its graph began once the first's ended
    assert log[-1] == ("second", "done")
    messages = {name for name, kind in log if kind == "message"}
    assert messages == {"first", "second"}
