"""When an acknowledged turn may run its graph: the process's graph slots.

A turn is acknowledged (its question journaled, `ack` sent) before its graph
runs, and the graph may wait. It waits for two things:
- a slot, where the process bounds how many graphs run at once (`bound`: with
  the offline model every turn is CPU, and more at once only slows each one);
  turns get slots in the order they asked;
- then, holding it, for a burst of questions to be admitted: while more than
  `admitting_ahead` questions are being admitted (threads/runs.py counts them
  from their arrival), no graph starts. An admission (the rights read, the lock
  taken, the INSERT) is what a question's `ack` waits for, and it shares the
  one event loop with the graphs: a hundred questions arriving together are
  acknowledged first, then answered.

Only graph starts wait: a graph that runs goes on, and admissions never wait
for a graph. A flood that keeps more than `admitting_ahead` questions in
admission holds graph starts back for as long; each client waits for its
answer before it asks again, so the flood ebbs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType


class GraphSlots:
    """The gate a turn's graph passes to run (see the module)."""

    def __init__(self, bound: int | None, *, admitting_ahead: int) -> None:
        self._bound = asyncio.Semaphore(bound) if bound else None
        self.admitting_ahead = admitting_ahead
        self.admitting = 0
        self._admissions_few = asyncio.Event()
        self._admissions_few.set()

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Count a question as being admitted for as long as the block runs."""
        self.admitting += 1
        if self.admitting > self.admitting_ahead:
            self._admissions_few.clear()
        try:
            yield
        finally:
            self.admitting -= 1
            if self.admitting <= self.admitting_ahead:
                self._admissions_few.set()

    def locked(self) -> bool:
        """Whether every slot is taken (a graph starting now would wait for one)."""
        return self._bound is not None and self._bound.locked()

    async def __aenter__(self) -> None:
        # The slot first, in the order turns asked for one; then, holding it,
        # the burst of admissions (if any) to pass. A turn is never sent back
        # behind turns that came after it.
        if self._bound is not None:
            await self._bound.acquire()
        try:
            await self._admissions_few.wait()
        except BaseException:
            self._release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        if self._bound is not None:
            self._bound.release()
