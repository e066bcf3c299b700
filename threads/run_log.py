"""A run's frames while its turn runs in this process: numbered, kept in memory
for the clients following it here (a `Recorder`), and written behind it to
the run log (memory/agent_runs.py) for those elsewhere and later, a batch at
a time (`write_behind`). The rest of a run's life is threads/agent_runs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from memory.agent_runs import AgentRunStore

log = logging.getLogger(__name__)

Frame = dict[str, Any]
Numbered = tuple[int, Frame]

# A run's frames go to its log this long after the first of them not yet written
# came, or at once at its end: a fast turn is one write, not one per frame.
LOG_GAP_S = 0.05
# The frames a run sends before its graph starts: until another comes, the turn
# may be waiting for a graph slot, and they wait with it (see Recorder.due).
BEFORE_GRAPH = ("attempt", "ack")
ENDS_RUN = ("done", "error")
# Each attempt at a run numbers its frames from its own range, above every
# earlier attempt's, so a client that saw frames the log never got (they were
# still to be written when the process died) misses nothing of the next one.
ATTEMPT_SPAN = 1_000_000
LAST_FRAME = 2**31 - 2  # above every frame's number


@dataclass(eq=False)
class Recorder:
    """One run's frames, numbered, while its turn runs in this process."""

    run_id: str
    first: int  # the number of this attempt's first frame
    frames: list[Numbered] = field(default_factory=list)
    written: int = 0  # how many of `frames` are in the log
    over: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, frame: Frame) -> None:
        self.frames.append((self.first + len(self.frames), frame))
        self._wake()

    def end(self) -> None:
        self.over = True
        self.ended.set()
        self._wake()

    def _wake(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def unwritten(self) -> list[Numbered]:
        return self.frames[self.written :]

    def due(self) -> bool:
        """Whether frames wait to be logged that a follower elsewhere could use:
        any beyond the ack. A turn that waits for a graph slot (a busy process)
        would otherwise log its ack alone, then its answer: two writes where the
        busy process can least afford them, for a frame that says only that the
        question is journaled (the journal says so too)."""
        return any(frame.get("type") not in BEFORE_GRAPH for _, frame in self.unwritten())

    def after(self, n: int) -> list[Numbered]:
        start = max(0, n + 1 - self.first)
        return self.frames[start:]


async def write_behind(recorder: Recorder, store: AgentRunStore) -> None:
    """Write the recorder's frames behind it, all that waits in one statement,
    LOG_GAP_S after the first of them came, once the graph has started
    (`Recorder.due`; its followers here read the recorder). What is left when
    the run ends goes with its end (AgentRuns._record): a run that ends within
    LOG_GAP_S is logged by its end alone."""
    while not recorder.over:
        changed = recorder.changed
        if recorder.due():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(recorder.ended.wait(), LOG_GAP_S)
            if not recorder.over:
                await log_unwritten(recorder, store)
            continue
        await changed.wait()


async def log_unwritten(recorder: Recorder, store: AgentRunStore) -> None:
    """Log the recorder's frames not yet written (a failure is logged, not raised:
    the run goes on, and its followers here read the recorder)."""
    batch = recorder.unwritten()
    recorder.written += len(batch)
    try:
        await store.log(recorder.run_id, batch)
    except Exception as exc:
        where = {"run_id": recorder.run_id, "error": type(exc).__name__}
        log.warning("run log write failed", extra=where)
