"""Stop a model's stream the moment the user cancels, not at its next token."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def run_until_cancelled(
    work: Coroutine[Any, Any, T], cancel: asyncio.Event | None
) -> T | None:
    """Run `work` to its end, or until `cancel` is set; then `work` is cancelled
    where it waits (a model's stream stops at once, not at its next token) and
    None is returned. Its error, if it fails first, is raised.

    One task for the whole of `work`, and one wait: a wait per streamed chunk
    (a task for each `anext` and an `asyncio.wait` on it and the cancel) cost
    2.6 ms of a 10 ms turn with the offline model's 60-odd chunks
    (bench/ws_turn: in-process run_turn with and without a cancel switch).
    """
    if cancel is None:
        return await work
    if cancel.is_set():
        work.close()
        return None
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
