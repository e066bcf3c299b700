"""Saving memories after `done`: one save at a time per session, owed saves
picked up at start, nothing lost to a crash (the marker lives in the database).

A busy thread's saves are batched: a turn that ends within SAVE_GAP_S of the
start of its thread's last save leaves its save to a timer for the rest of the
gap, and that one save covers every turn since (a save reads all that the
thread owes). A person's turns are further apart than that, so each is saved
as it ends; a client asking turn after turn no longer pays a save per turn.

What a user said of themselves in one thread is known in the next at once: a
turn's memory load, and the list of memories, first finish the saves this
process owes for the user's other threads (`settle`), rather than read around
a save that waits out its gap or is still running. Only for turns whose
message may say something of the user (`may_tell`): a client running many
threads of one account at once does not make each turn wait for the others'
saves of questions, which teach nothing to recall.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel

from graph.asked import is_question, small_talk
from graph.remember import save_session_memories
from graph.statements import statements
from graph.turn import Turn
from memory.errors import SessionNotFound
from memory.memories import MemoryStore

log = logging.getLogger(__name__)

SAVE_GAP_S = 1.0  # a thread's saves begin at least this far apart (see above)
FINISH_ON_CLOSE_S = 5.0  # the longest a closing process spends on the saves still waiting
SETTLE_S = 5.0  # the longest a turn or a listing waits for a user's saves (settle)


@dataclass(eq=False)
class _Saving:
    """A session's saves while anyone uses them: one at a time, and how many wrote."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wrote: int = 0


def may_tell(text: str) -> bool:
    """Whether a message may say something of the user: a statement ("I …",
    "My …"), or anything that is neither a question nor small talk, as what it
    says may be read with the turns before it ("She's a nurse" after "My
    girlfriend is Sarah", "No wait, it's John"); graph/statements.py."""
    return bool(statements(text)) or not (is_question(text) or small_talk(text))


class MemorySaver:
    def __init__(
        self,
        model: BaseChatModel,
        memories: MemoryStore,
        *,
        delay_ms: int = 0,
    ) -> None:
        self.model = model
        self.memories = memories
        self.delay_ms = delay_ms
        # Each session's saves while anyone uses them; unused ones are collected.
        self._saving: weakref.WeakValueDictionary[str, _Saving] = weakref.WeakValueDictionary()
        self._startup: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[bool]] = set()
        self._began: dict[str, float] = {}  # when each thread's last save began
        self._later: set[str] = set()  # threads whose save waits out the gap
        # The saves owed here for turns that said something of the user, by
        # session: its user, and a count of those turns (a save clears it only
        # if no such turn came since it began).
        self._owed: dict[str, tuple[str, int]] = {}

    async def after_turn(self, turn: Turn) -> None:
        if turn.user_id is None or not turn.memory_enabled:
            return  # anonymous and memory-off sessions learn nothing long-term
        session_id = turn.session_id
        if may_tell(turn.query["content"]):  # it may have said something of the user (settle)
            self._owe(session_id, turn.user_id)
        if self.delay_ms:
            await asyncio.sleep(self.delay_ms / 1000)
        if session_id in self._later:
            return  # the save waiting out the gap covers this turn
        wait = self._began.get(session_id, float("-inf")) + SAVE_GAP_S - time.monotonic()
        if wait > 0:
            self._later.add(session_id)
            self._in_background(self._save_after(session_id, wait), session_id)
            return
        await self._save_now(session_id)

    async def _save_after(self, session_id: str, wait: float) -> bool:
        await asyncio.sleep(wait)
        self._later.discard(session_id)
        return await self._save_now(session_id)

    async def _save_now(self, session_id: str) -> bool:
        now = time.monotonic()
        self._began[session_id] = now
        if len(self._began) > 10_000:  # forget threads whose gap is long over
            self._began = {s: t for s, t in self._began.items() if now - t < SAVE_GAP_S}
        return await self.save(session_id)

    async def save(self, session_id: str, *, before_seq: int | None = None) -> bool:
        """Save what `session_id` owes (with `before_seq`, what came before that
        message: a turn running asks for its earlier turns' save, see
        graph/nodes.py: planning). True when its memories changed meanwhile:
        this save wrote, or the one it waited for (a save of the thread already
        running when it was asked, which leaves this one nothing owed); False
        if nothing was due or the session is gone. A save waiting out the gap
        then finds less or nothing owed."""
        saving = self._saving.get(session_id)
        if saving is None:
            saving = self._saving[session_id] = _Saving()
        wrote_before = saving.wrote
        async with saving.lock:
            covers = self._owed.get(session_id)  # the turns this save covers
            try:
                saved = await save_session_memories(
                    self.model, self.memories, session_id, before_seq=before_seq
                )
            except SessionNotFound:
                self._covered(session_id, covers, before_seq)
                return False
            except Exception:
                # Owed in the database still: the thread's next turn, the
                # cleanup's sweep or the next start retries it.
                self._covered(session_id, covers, before_seq)
                raise
            self._covered(session_id, covers, before_seq)
            saving.wrote += saved
        return saving.wrote != wrote_before

    def _owe(self, session_id: str, user_id: str) -> None:
        """A save of `session_id` is owed here for what it told of `user_id`."""
        self._owed[session_id] = (user_id, self._owed.get(session_id, ("", 0))[1] + 1)

    def _covered(self, session_id: str, covers: tuple[str, int] | None, before: int | None) -> None:
        """A save of all a session owed ended: it is owed here no more, unless
        a turn came while it ran (or the save stopped short, at `before`)."""
        if before is None and covers is not None and self._owed.get(session_id) == covers:
            del self._owed[session_id]

    async def settle(self, user_id: str, *, but: str | None = None) -> None:
        """Finish now the saves this process owes for `user_id`'s threads (but
        `but`, the thread asking: its own words are in its window), side by
        side: one waiting out its gap runs at once, one running is waited for. A failed save is
        logged, and one still running after SETTLE_S (a remote model that
        hangs) is left to run; both stay owed. A save owed by another process
        is not waited for (it runs within SAVE_GAP_S of its turn's end)."""
        owed = [s for s, (u, _) in self._owed.items() if u == user_id and s != but]
        if not owed:
            return
        try:
            async with asyncio.timeout(SETTLE_S):
                ended = await asyncio.gather(*map(self.save, owed), return_exceptions=True)
        except TimeoutError:
            log.warning("memory saves still running", extra={"user_id": user_id})
            return
        for session_id, failure in zip(owed, ended, strict=True):
            if isinstance(failure, Exception):
                log.error("memory save failed", extra={"session_id": session_id}, exc_info=failure)

    def save_soon(self, session_id: str, user_id: str) -> None:
        """Save in the background what `session_id` tells of `user_id` (after a
        claim: a visitor's thread becomes their account's), known at once to
        their turns and memory list (`settle`); a failure is retried next turn."""
        self._owe(session_id, user_id)
        self._in_background(self.save(session_id), session_id)

    def _in_background(self, saving: Coroutine[Any, Any, bool], session_id: str) -> None:
        task = asyncio.create_task(saving, name=f"memory-save-{session_id}")
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background memory save failed", exc_info=task.exception())

    def start_owed_saves(self) -> None:
        """At start, finish the saves a previous process owed (it died after `done`)."""
        self._startup = asyncio.create_task(self.finish_owed(), name="owed-memory-saves")

    async def finish_owed(self, *, idle_s: float = 0) -> None:
        """Finish the saves owed (with `idle_s`, by threads unchanged that long:
        the periodic cleanup's sweep, threads/cleanup.py, for a process that
        ended owing one while the others ran on)."""
        while pending := await self.memories.pending_sessions(limit=100, idle_s=idle_s):
            saved = 0
            for session_id, _ in pending:
                try:
                    saved += await self.save(session_id)
                except Exception:
                    log.exception("owed memory save failed", extra={"session_id": session_id})
            if not saved:
                return  # what is left cannot be saved now; the next turn retries
            log.info("owed memory saves finished", extra={"count": saved})

    async def close(self) -> None:
        """Stop, after running now the saves that wait out their gap (within
        FINISH_ON_CLOSE_S; what is left stays owed, for the next turn or start)."""
        waiting, self._later = list(self._later), set()
        for task in list(self._background):
            task.cancel()
        if waiting:
            saving = asyncio.gather(*map(self.save, waiting), return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(saving, FINISH_ON_CLOSE_S)
        if self._startup is not None:
            self._startup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._startup
