"""A watcher's outbox (threads/outbox.py): what its one consumer takes out."""

from __future__ import annotations

import json

from threads.outbox import Outbox, OutboxLimits


def token(run: str, at: int, content: str) -> dict[str, object]:
    return {"type": "token", "run_id": run, "at": at, "content": content}


async def test_tokens_queued_one_behind_the_other_go_out_as_one_frame() -> None:
    box = Outbox(OutboxLimits(frames=100, bytes=1 << 20))
    for event in [
        token("a", 0, "The "),
        token("a", 4, "sea "),
        token("a", 8, "is"),
        {"type": "progress", "node": "response", "status": "started"},
        token("a", 10, "!"),
        token("b", 0, "other run"),
    ]:
        box.put_nowait(event)
    taken = [await box.get_frame() for _ in range(4)]
    assert [f.event for f in taken] == [
        token("a", 0, "The sea is"),  # starts where the first did
        {"type": "progress", "node": "response", "status": "started"},
        token("a", 10, "!"),  # a frame of another kind is never jumped over
        token("b", 0, "other run"),  # nor a token of another run joined
    ]
    assert [json.loads(f.text or "") for f in taken] == [f.event for f in taken]
    assert box.empty() and box.bytes == 0


async def test_a_lone_token_keeps_its_encoded_text() -> None:
    box = Outbox(OutboxLimits(frames=10, bytes=1 << 20))
    box.offer(token("a", 0, "hi"), '{"pre":"encoded"}')
    frame = await box.get_frame()
    assert frame.text == '{"pre":"encoded"}' and box.bytes == 0
