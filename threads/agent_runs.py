"""Runs of the Agent Server API (docs/agent-server-api.md): asked, queued,
logged and followed, in any process and across restarts.

A run is a thread's turn asked through that API, named by its question's id.
Every run is a row (memory/agent_runs.py) from the moment it is asked, and
its frames are logged, numbered, while its turn runs: a `Recorder` in the
process that runs the turn keeps them in memory for the clients following it
there and writes them behind, a batch at a time (threads/run_log.py). A
client that comes back (`Last-Event-ID`), in this process or another, or after
a restart, reads the log after the number it saw, then follows the rest.

What happens when the thread is busy is the run's multitask strategy:
`reject` (SessionBusy), `interrupt` (the running turn is stopped, its partial
answer journaled, then this run starts), `rollback` (as interrupt, and the
stopped turn's question and partial answer are taken out of the journal) or
`enqueue` (the run waits in the queue, in order, and starts when the thread is
free). The queue lives in PostgreSQL: whichever process ends a turn of the
thread starts its next run, and every process looks for runs left waiting
(also runs whose process went away mid-turn: they are asked again, which
reruns a turn cut off before its answer) at start and then every
`QUEUE_SCAN_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Literal

from graph.state import Query
from graph.turn import validate_query
from memory.agent_runs import AgentRun, AgentRunStore
from memory.errors import InvalidInput, ThreadlineError
from memory.models import ChatSession
from threads.events import Watcher
from threads.locks import SessionBusy
from threads.operations import Threads
from threads.run_log import (
    ATTEMPT_SPAN,
    ENDS_RUN,
    LAST_FRAME,
    Frame,
    Numbered,
    Recorder,
    log_unwritten,
    write_behind,
)

log = logging.getLogger(__name__)

Strategy = Literal["reject", "interrupt", "rollback", "enqueue"]

QUEUE_SCAN_S = 2.0  # how often a process looks for runs left waiting
# A started run nothing has been logged for in this long, on a thread no process
# is running, is taken to have lost its process and is asked again.
STALE_S = 5.0
STOP_WAIT_S = 30.0  # interrupt/rollback: how long the running turn gets to stop
FOLLOW_WAKE_S = 0.5  # a follower in another process reads the log at least this often
Begin = Callable[[], Awaitable[list[Frame]]]


class AgentRuns:
    """The runs of the Agent Server API, over the `threads/` layer."""

    def __init__(self, threads: Threads, store: AgentRunStore) -> None:
        self.threads = threads
        self.store = store
        self.recorders: dict[str, Recorder] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.scanner: asyncio.Task[None] | None = None
        # Threads this process knows to have queued runs: a turn that ends on one
        # starts the next (any other turn's end costs nothing; the scan finds
        # runs queued from other processes).
        self.waiting: set[str] = set()
        threads.runs.on_end.append(self._turn_ended)

    # Asking

    async def ask(
        self,
        session: ChatSession,
        query: Query,
        strategy: Strategy = "reject",
        *,
        rework: tuple[str, Query | None] | None = None,
    ) -> tuple[AgentRun, int]:
        """Ask the run; returns it and the number its frames follow (a client
        follows the run from there: see `follow`). A run asked before and not
        over is not asked again: the caller follows it.

        `rework` (question id, new query or None) redoes the thread's last
        question (Threads.redo_in) instead of asking a new one.
        """
        # Refused before its row is written: a question the journal would refuse
        # (empty, too long, a NUL or a lone surrogate) is no run.
        asked = query if rework is None else rework[1]  # None: its answer is redone
        if asked is not None:
            validate_query(asked, self.threads.options.max_message_chars)
        queued = strategy == "enqueue" and rework is None
        added = await self.store.add(
            query["id"], session.id, dict(query), queued=queued, fresh=rework is not None
        )
        if added is None:
            raise InvalidInput("this message id is already used in another session")
        run, created = added
        if not created and run.state in ("queued", "started"):
            return run, 0
        if queued and created:
            self.waiting.add(session.id)
            await self.kick(session.id)
            return run, 0

        def begin() -> Awaitable[list[Frame]]:
            if rework is not None:
                return self.threads.redo_in(session, rework[0], rework[1])
            return self.threads.ask(session, query)

        try:
            # Only these strategies look before they ask (the others learn that
            # the thread is busy from the admission itself).
            stopping = strategy in ("interrupt", "rollback")
            if stopping and await self.threads.is_running(session.id):
                stopped = await self._stop_running(session)
                if strategy == "rollback" and stopped is not None and rework is None:

                    def begin() -> Awaitable[list[Frame]]:
                        return self.threads.ask_instead(session, stopped, query)

            # A run just added is in its first attempt (AgentRunStore.add).
            first = await self._start(session, run.id, begin, run.attempt if created else None)
        except BaseException:
            await self.store.finish(run.id)
            raise
        return run, first - 1

    async def _start(
        self, session: ChatSession, run_id: str, begin: Begin, attempt: int | None = None
    ) -> int:
        """Hand the run's turn to this process, recording its frames; returns the
        number of the attempt's first frame (SessionBusy when the thread is busy:
        nothing was started). The run's id is its question's. `attempt`: the
        attempt the run's row already counts (else it counts one more now)."""
        watcher = self.threads.watch(session)
        try:
            replayed = await begin()
        except BaseException:
            self.threads.unwatch(watcher)
            raise
        if attempt is None:
            attempt = await self.store.mark_started(run_id)
        recorder = Recorder(run_id, (attempt - 1) * ATTEMPT_SPAN + 1)
        if attempt > 1:
            recorder.add({"type": "attempt", "attempt": attempt})
        self.recorders[run_id] = recorder
        task = asyncio.create_task(
            self._record(recorder, watcher, replayed), name=f"record-{run_id}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return recorder.first

    async def _record(self, recorder: Recorder, watcher: Watcher, replayed: list[Frame]) -> None:
        writer = asyncio.create_task(
            write_behind(recorder, self.store), name=f"log-{recorder.run_id}"
        )
        try:
            if replayed:
                for frame in replayed:
                    recorder.add(frame)
            else:
                turn_run: str | None = None
                while True:
                    frame = await watcher.queue.get()
                    if turn_run is None:
                        if frame.get("type") != "ack" or frame.get("id") != recorder.run_id:
                            continue
                        turn_run = frame.get("run_id")
                    if frame.get("run_id") not in (None, turn_run):
                        continue
                    recorder.add(frame)
                    if frame.get("type") in ENDS_RUN:
                        break
        except BaseException:
            # Its turn was cut off here (a shutdown): the run is not over, but
            # what it sent is logged, for whoever asks it again.
            await self._close(recorder, watcher, writer)
            with contextlib.suppress(Exception):
                await asyncio.shield(log_unwritten(recorder, self.store))
            self.recorders.pop(recorder.run_id, None)
            raise
        await self._close(recorder, watcher, writer)
        try:
            # Its last frames are logged as it ends, in one statement.
            ending = self.store.end(recorder.run_id, watcher.session_id, recorder.unwritten())
            waiting = await asyncio.shield(ending)
        finally:
            # Only now: a follower here that finds no recorder reads the log.
            self.recorders.pop(recorder.run_id, None)
        if waiting:
            await self._turn_ended(watcher.session_id, known=True)
        else:
            self.waiting.discard(watcher.session_id)

    async def _close(
        self, recorder: Recorder, watcher: Watcher, writer: asyncio.Task[None]
    ) -> None:
        """The run's frames are all in: no more come, and no batch is being written."""
        self.threads.unwatch(watcher)
        recorder.end()
        with contextlib.suppress(Exception):
            await asyncio.shield(writer)

    async def _stop_running(self, session: ChatSession) -> str | None:
        """Stop the thread's running turn and wait until the thread is free;
        returns the stopped turn's question id (the thread's last question)."""
        last = await self.threads.deps.journal.tail(session.id, 1)
        question = last[-1].id if last and last[-1].role == "user" else None
        watcher = self.threads.watch(session)
        try:
            await self.threads.cancel(session)
            deadline = time.monotonic() + STOP_WAIT_S
            while await self.threads.is_running(session.id):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SessionBusy("the running turn did not stop; try again")
                # Woken by the turn's last frames; its lock goes right after them.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher.queue.get(), min(left, 0.2))
        finally:
            self.threads.unwatch(watcher)
        return question

    # Following

    async def follow(
        self, session: ChatSession, run_id: str, after: int
    ) -> AsyncGenerator[Numbered, None]:
        """The run's frames numbered above `after`, until its turn ends: from this
        process's recorder while the turn runs here, else from the log (woken by
        the thread's frames, which reach every process, or every FOLLOW_WAKE_S)."""
        watcher = self.threads.watch(session)
        try:
            while True:
                recorder = self.recorders.get(run_id)
                if recorder is not None:
                    # Earlier attempts' frames from the log; then this one's from memory.
                    if after + 1 < recorder.first:
                        async for numbered in self._logged(run_id, after, recorder.first):
                            yield numbered
                        after = recorder.first - 1
                    changed = recorder.changed
                    for numbered in recorder.after(after):
                        yield numbered
                        after = numbered[0]
                    if recorder.over:
                        return
                    await changed.wait()
                    continue
                logged = await self.store.frames_after(run_id, after)
                for numbered in logged:
                    yield numbered
                    after = numbered[0]
                if logged or run_id in self.recorders:
                    continue
                if not await self._open(session.id, run_id):
                    # Over: what its recorder wrote last is in the log by now.
                    if not await self.store.frames_after(run_id, after, limit=1):
                        return
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watcher.queue.get(), FOLLOW_WAKE_S)
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
        finally:
            self.threads.unwatch(watcher)

    async def _logged(self, run_id: str, after: int, before: int) -> AsyncIterator[Numbered]:
        """The logged frames numbered above `after` and below `before`."""
        while True:
            page = await self.store.frames_after(run_id, after, before=before)
            for numbered in page:
                yield numbered
                after = numbered[0]
            if not page:
                return

    async def wait_over(self, session: ChatSession, run_id: str) -> None:
        """Until the run's turn ended (its frames unread)."""
        async for _ in self.follow(session, run_id, LAST_FRAME):
            pass

    def cancel_soon(self, session: ChatSession, run_id: str) -> None:
        """`cancel` the run in the background (its client left its stream)."""

        async def cancel() -> None:
            try:
                await self.cancel(session, run_id)
            except Exception:
                log.exception("a run was not cancelled", extra={"run_id": run_id})

        task = asyncio.create_task(cancel(), name=f"cancel-run-{run_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def discard_when_over(self, session: ChatSession, run_id: str | None) -> None:
        """Delete a stateless run's thread (Threads.discard) once the run is over
        (at once with no run: it was refused), in the background: the client
        may be gone by then. A process that stops first leaves the thread, an
        ordinary thread of the user's."""

        async def discard() -> None:
            try:
                if run_id is not None:
                    await self.wait_over(session, run_id)
                await self.threads.discard(session)
            except Exception:
                log.exception("a stateless run's thread was left", extra={"session_id": session.id})

        task = asyncio.create_task(discard(), name=f"stateless-run-{session.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _open(self, session_id: str, run_id: str) -> bool:
        run = await self.store.get(session_id, run_id)
        return run is not None and run.state in ("queued", "started")

    # The queue

    async def cancel(
        self, session: ChatSession, run_id: str, *, rollback: bool = False, wait: bool = False
    ) -> bool:
        """Cancel the run `run_id`: a queued one leaves the queue; the thread's
        running turn, if it is this run's, is stopped (its partial answer
        journaled as cancelled), and with `rollback` its question and partial
        answer are then taken out of the journal. With `wait` (or `rollback`),
        until the turn has stopped. False when the run is neither queued nor
        running: over already, or not the turn that runs."""
        if await self.cancel_queued(session, run_id):
            return True
        last = await self.threads.deps.journal.tail(session.id, 1)
        if not (last and last[-1].id == run_id and await self.threads.is_running(session.id)):
            return False
        if rollback:
            if await self._stop_running(session) == run_id:
                await self.threads.roll_back(session, run_id)
        elif wait:
            await self._stop_running(session)
        else:
            await self.threads.cancel(session)
        return True

    async def cancel_queued(self, session: ChatSession, run_id: str) -> bool:
        """Take a run out of the queue before it starts; False if it is not waiting."""
        run = await self.store.get(session.id, run_id)
        if run is None or run.state != "queued":
            return False
        return await self.store.finish(run_id, "cancelled")

    async def kick(self, session_id: str) -> None:
        """Start the thread's next waiting run here, if the thread is free."""
        if await self.threads.is_running(session_id):
            return
        run = await self.store.take_next(session_id, STALE_S)
        if run is None:
            if not await self.store.open_runs(session_id):
                self.waiting.discard(session_id)
            return
        query = Query(id=run.query["id"], content=run.query["content"])
        if isinstance(run.query.get("run"), dict):  # what it was asked with
            query["run"] = run.query["run"]
        try:
            session = await self.threads.deps.sessions.get(session_id)

            def begin() -> Awaitable[list[Frame]]:
                return self.threads.ask(session, query)

            await self._start(session, run.id, begin)
        except SessionBusy:
            await self.store.requeue(run.id)  # another turn took the thread first
        except ThreadlineError as exc:
            log.warning("a queued run could not start", extra={"run_id": run.id, "error": exc.code})
            await self.store.finish(run.id)

    async def _turn_ended(self, session_id: str, *, known: bool = False) -> None:
        if not known and session_id not in self.waiting:
            return
        try:
            await self.kick(session_id)
        except Exception:
            log.exception("starting the next queued run failed", extra={"session_id": session_id})

    async def scan(self) -> None:
        """Start the waiting runs of every free thread (at start, then periodically)."""
        for session_id in await self.store.waiting_sessions(STALE_S):
            if session_id not in self.threads.runs.active:
                self.waiting.add(session_id)
                await self._turn_ended(session_id)

    async def scan_forever(self) -> None:
        while True:
            try:
                await self.scan()
            except Exception:
                log.warning("queue scan skipped", exc_info=True)
            await asyncio.sleep(QUEUE_SCAN_S)

    def start_scanning(self) -> None:
        self.scanner = asyncio.create_task(self.scan_forever(), name="agent-run-queue")

    async def close(self) -> None:
        """Stop scanning; give the recorders a moment to write their last frames."""
        if self.scanner is not None:
            self.scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.scanner
        if self.tasks:
            _, pending = await asyncio.wait(list(self.tasks), timeout=2)
            for task in pending:
                task.cancel()
