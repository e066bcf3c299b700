"""Stop a model's stream the moment the user cancels, not at its next token."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def stream_until_cancelled(
    stream: AsyncIterator[T], cancel: asyncio.Event | None
) -> AsyncIterator[T]:
    """Yield from `stream` until it ends or `cancel` is set."""
    if cancel is None:
        async for item in stream:
            yield item
        return
    iterator = aiter(stream)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        while not cancel.is_set():
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({step, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                break
            try:
                yield step.result()
            except StopAsyncIteration:
                break
    finally:
        waiter.cancel()
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
