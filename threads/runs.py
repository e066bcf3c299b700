"""Turns run here, detached from any socket: a browser that leaves loses nothing.

A query takes the thread's lock, runs the graph in a task of its own, and
publishes every event to whoever watches the thread. `done` goes out only after
the answer is journaled, the checkpoint is durable and the lock is released.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg

from graph.nodes import answer_id_for
from graph.slots import GraphSlots
from graph.state import Query
from graph.turn import JournaledTurn, Turn, journal_question, prune_after_turn, validate_query
from memory.db import CONNECT_TIMEOUT_S
from memory.errors import (
    DATABASE_DOWN,
    DatabaseUnavailable,
    InvalidInput,
    MessageIdConflict,
    ThreadlineError,
)
from memory.futures import retrieved
from memory.models import ChatMessage, ChatSession
from threads import metrics
from threads.events import EventBus, error_frame
from threads.locks import SessionBusy, ThreadLocks
from threads.options import ThreadOptions
from threads.turn_deps import TurnDeps

log = logging.getLogger(__name__)
AfterTurn = Callable[[Turn], Awaitable[None]]


DATABASE_UNAVAILABLE = "the database is unavailable; resend to retry"
# More questions than this being admitted at once is a burst: graph starts wait
# for it to pass (graph/slots.py). Under a steady load a few are.
ADMITTING_AHEAD = 4


class ShuttingDown(ThreadlineError):
    code = "shutting_down"


class TurnFailed(ThreadlineError):
    """A turn failed on something other than its input (logged with its cause)."""

    code = "internal"


@dataclass
class ActiveRun:
    run_id: str
    query_id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


# Work on the journal done under the thread's lock before a turn, which gives
# the query that turn runs (a regenerated answer, an edited question).
Rework = Callable[[ChatSession], Awaitable[Query]]


class RunRegistry:
    """The turns running in this process."""

    def __init__(
        self,
        deps: TurnDeps,
        locks: ThreadLocks,
        events: EventBus,
        options: ThreadOptions,
        after_turn: list[AfterTurn],
    ) -> None:
        self.deps = deps
        self.locks = locks
        self.events = events
        self.options = options
        self.after_turn = after_turn
        self.active: dict[str, ActiveRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # turns, with their after-turn work
        # How many turns run their graph at once here (the others wait, acknowledged),
        # and not before a burst of questions being admitted has passed.
        self.slots = GraphSlots(options.graph_slots or None, admitting_ahead=ADMITTING_AHEAD)
        # The questions admitted at once (see `_admit`): a connection of the pool each.
        self.admissions = asyncio.Semaphore(deps.db.pool.max_size)
        self.closing = False
        # Told when a thread's turn ended here and the thread is free (the Agent
        # Server API's queue starts the thread's next run: threads/agent_runs.py).
        self.on_end: list[Callable[[str], Awaitable[None]]] = []

    async def submit(self, session: ChatSession, query: Query) -> list[dict[str, Any]]:
        """Start the turn, or answer a resend from the journal (see `submit_allowed`)."""
        _, frames = await self.submit_allowed(already_opened(session), session.id, query)
        return frames

    async def submit_allowed(
        self, rights: Awaitable[ChatSession], session_id: str, query: Query | Rework
    ) -> tuple[ChatSession, list[dict[str, Any]]]:
        """Start the turn on the session `rights` yields, or answer a resend from the
        journal; returns the session and the frames for the asking socket alone (a
        replay). A started run's frames reach every watcher through the event bus.

        The rights are read while the thread's lock is taken, side by side; they
        are judged first (a stranger learns nothing, not even busy), and a lock
        taken for a caller they refuse is given back. The question is then
        journaled under the lock, and that INSERT is the replay check: a question
        journaled before runs only if its answer is not (a resend cut off before
        its answer), else its answer is replayed. A thread that is busy still
        answers a resend whose answer is journaled (read, not written).

        A `Rework` instead of a query runs first under the lock (it changes the
        journal: Threads.redo) and gives the query to run; it needs the thread
        free (busy otherwise).

        Shielded: a caller that goes away meanwhile (a socket closing) cannot
        leave the lock taken with no run to give it back; the admission ends,
        one way or the other, and the run, if one starts, goes on without it.
        """
        if self.closing:
            raise ShuttingDown("the server is shutting down; retry in a moment")
        admission = asyncio.ensure_future(self._admit(rights, session_id, query))
        admission.add_done_callback(retrieved)  # its error, if nobody waits any more
        try:
            return await asyncio.shield(admission)
        except DATABASE_DOWN as exc:  # reading the rights or the journal, taking the lock
            raise DatabaseUnavailable(DATABASE_UNAVAILABLE) from exc

    async def _admit(
        self, rights: Awaitable[ChatSession], session_id: str, query: Query | Rework
    ) -> tuple[ChatSession, list[dict[str, Any]]]:
        """`_admit_in_turn`, once the question's turn to be admitted has come.

        As many questions are admitted at once as the pool has connections, the
        others wait in the order they came: a burst of a hundred is acknowledged
        first come, first served, instead of all of them taking turns at the
        pool and at the event loop and all being acknowledged at the end of the
        burst (bench/ws_load's first turns). A question waits for its turn as
        long as for a pooled connection at most (the database may be away).
        From its arrival it counts as being admitted (graph/slots.py).
        """
        with self.slots.admission():
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self.admissions.acquire()
            except TimeoutError:
                if inspect.iscoroutine(rights):
                    rights.close()  # never to be read
                raise DatabaseUnavailable(DATABASE_UNAVAILABLE) from None
            try:
                return await self._admit_in_turn(rights, session_id, query)
            finally:
                self.admissions.release()

    async def _admit_in_turn(
        self, rights: Awaitable[ChatSession], session_id: str, query: Query | Rework
    ) -> tuple[ChatSession, list[dict[str, Any]]]:
        allowed, locked = await asyncio.gather(
            rights, self.locks.try_acquire(session_id), return_exceptions=True
        )
        if isinstance(allowed, BaseException) or isinstance(locked, BaseException):
            if locked is True:
                await self.locks.release(session_id)
            raise allowed if isinstance(allowed, BaseException) else cast(BaseException, locked)
        session = allowed
        if not locked and callable(query):
            raise SessionBusy("a turn is running in this session; wait for it to end")
        if not locked:
            assert not callable(query)
            validate_query(query, self.options.max_message_chars)
            replay = await self._replay(session, query)
            if replay is not None:
                return session, replay
            raise SessionBusy("a turn is already running in this session")
        try:
            if callable(query):
                query = await query(session)
            validate_query(query, self.options.max_message_chars)
            if self.closing:
                raise ShuttingDown("the server is shutting down; retry in a moment")
            run, journaled = await self._journal(session, query)
        except BaseException:
            await self.locks.release(session_id)
            raise
        if isinstance(journaled, list):  # a resend whose answer is journaled
            await self.locks.release(session_id)
            return session, journaled
        run.task = asyncio.create_task(self._run(run, journaled), name=f"turn-{session.id}")
        self._tasks.add(run.task)  # until its after-turn work is over too (see drain)
        run.task.add_done_callback(self._tasks.discard)
        return session, []

    async def _journal(
        self, session: ChatSession, query: Query
    ) -> tuple[ActiveRun, JournaledTurn | list[dict[str, Any]]]:
        """The turn's question journaled (its INSERT is the replay check too):
        the run to start, or the frames that answer a resend."""
        run = ActiveRun(run_id=str(uuid.uuid4()), query_id=query["id"])
        self.active[session.id] = run
        self.events.on_cancel(session.id, run.cancel.set)
        try:
            ctx = self.deps.context(
                self.options,
                cancel=run.cancel,
                model=self.deps.model_named(session.model_choice),
                slots=self.slots,
                session_id=session.id,
            )
            turn = Turn(session.id, session.user_id, session.memory_enabled, query)
            journaled = await journal_question(
                self.deps.graph,
                self.deps.db.pool,
                ctx,
                turn,
                durability=self.options.durability,
                checkpoints_keep=self.options.checkpoints_keep,
            )
            replay = await self._replay_of(journaled)
        except Exception as exc:
            self._forget(session.id)
            failure = turn_failure(exc, session.id, run.run_id)
            if failure is exc:
                raise
            raise failure from exc
        except BaseException:
            self._forget(session.id)
            raise
        if replay is not None:
            journaled.abandon()
            self._forget(session.id)
            return run, replay
        return run, journaled

    def _forget(self, session_id: str) -> None:
        self.active.pop(session_id, None)
        self.events.forget_cancel(session_id)

    async def _replay_of(self, journaled: JournaledTurn) -> list[dict[str, Any]] | None:
        """For a question journaled before (a resend): the frames of its answer,
        or None when it is to run (cut off before its answer)."""
        if journaled.created:
            return None
        asked = journaled.row
        if asked.role != "user":
            raise InvalidInput("this message id is not a user message")
        answer = await self.deps.journal.get(answer_id_for(asked.id))
        return None if answer is None else replay_frames(asked, answer)

    async def _replay(self, session: ChatSession, query: Query) -> list[dict[str, Any]] | None:
        """A query id already journaled is never run twice: the frames that answer a
        resend, or None when the query is to run (new, or cut off before its answer).

        One query reads the session, the id and its answer's id.
        """
        answer_id = answer_id_for(query["id"])
        found = await self.deps.journal.find(session.id, [query["id"], answer_id])
        asked, answer = found.get(query["id"]), found.get(answer_id)
        if asked is None:
            return None
        if asked.session_id != session.id:
            raise MessageIdConflict("this message id is already used in another session")
        if asked.role != "user":
            raise InvalidInput("this message id is not a user message")
        if answer is None:
            return None  # cut off before its answer: run it now
        return replay_frames(asked, answer)

    async def _run(self, run: ActiveRun, journaled: JournaledTurn) -> None:
        turn = journaled.turn
        session_id = turn.session_id
        started, ok = time.perf_counter(), False
        try:
            async for event in journaled.events():
                self.events.publish(session_id, {**event, "run_id": run.run_id})
                if event["type"] == "ack":
                    # The sockets' writers, woken by the ack, run before the graph
                    # starts: its first steps hold the loop for about a millisecond,
                    # which the ack spent waiting in the outboxes (bench/ws_turn).
                    await asyncio.sleep(0)
            ok = True
        except Exception as exc:
            failure = turn_failure(exc, session_id, run.run_id)
            self._fail(session_id, run, failure.code, str(failure))
        finally:
            self._forget(session_id)
            await self.locks.release(session_id)
        if ok:
            metrics.TURNS.inc()
            metrics.TURN_SECONDS.observe(time.perf_counter() - started)
            self.events.publish(session_id, {"type": "done", "run_id": run.run_id})
        for ended in self.on_end:
            await ended(session_id)
        if ok:
            await self._after(turn)

    def _fail(self, session_id: str, run: ActiveRun, code: str, message: str) -> None:
        frame = {**error_frame(code, message), "run_id": run.run_id, "id": run.query_id}
        self.events.publish(session_id, frame)

    async def _after(self, turn: Turn) -> None:
        """Work after the answer (pruning past one checkpoint, memory saving),
        outside the thread's lock."""
        try:
            await prune_after_turn(
                self.deps.db.pool,
                turn.session_id,
                keep=self.options.checkpoints_keep,
                durability=self.options.durability,
            )
        except psycopg.Error as exc:
            # A concurrent turn's checkpoint raced the prune, or the pool had no
            # connection to spare; the next prune catches up.
            where = {"session_id": turn.session_id, "error": type(exc).__name__}
            log.warning("checkpoint pruning skipped", extra=where)
        for hook in self.after_turn:
            try:
                await hook(turn)
            except Exception:
                log.exception("after-turn work failed", extra={"session_id": turn.session_id})

    async def is_running(self, session_id: str) -> bool:
        """Whether a turn of this thread runs here or in any other process."""
        return session_id in self.active or await self.locks.running_anywhere(session_id)

    async def drain(self, timeout_s: float) -> None:
        """Take no new turns; let running ones finish within `timeout_s`, with
        the work after their answers (the memory save: a `threadline chat` that
        ends right after an answer would otherwise leave it owed)."""
        self.closing = True
        tasks = list(self._tasks)
        if not tasks:
            return
        log.info("waiting for %d running turns", len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)


async def already_opened(session: ChatSession) -> ChatSession:
    """Rights already checked by the caller: the session it opened."""
    return session


def replay_frames(asked: ChatMessage, answer: ChatMessage) -> list[dict[str, Any]]:
    """What answers a resend whose answer is journaled: its ack, answer and done."""
    return [
        {"type": "ack", "id": asked.id, "seq": asked.seq, "replayed": True},
        {"type": "message", "message": answer.as_dict(), "replayed": True},
        {"type": "done", "run_id": None, "replayed": True},
    ]


def turn_failure(exc: Exception, session_id: str, run_id: str) -> ThreadlineError:
    """What a turn that raised `exc` answers (counted, and logged unless it is
    the caller's error): its own error, database unavailable, or TurnFailed."""
    if isinstance(exc, ThreadlineError):
        failure = exc
    elif isinstance(exc, DATABASE_DOWN):
        where = {"session_id": session_id, "error": type(exc).__name__}
        log.warning("turn failed: database unavailable", extra=where)
        failure = DatabaseUnavailable(DATABASE_UNAVAILABLE)
    else:
        log.exception("turn failed", extra={"session_id": session_id, "run_id": run_id})
        failure = TurnFailed("the turn failed; resend to retry")
    metrics.TURN_ERRORS.labels(failure.code).inc()
    return failure
