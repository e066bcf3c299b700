"""Turns run here, detached from any socket: a browser that leaves loses nothing.

A query takes the thread's lock, runs the graph in a task of its own, and
publishes every event to whoever watches the thread. `done` goes out only after
the answer is journaled, the checkpoint is durable and the lock is released.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from app import metrics
from app.errors import DATABASE_DOWN, error_frame
from app.locks import SessionBusy
from graph.nodes import answer_id_for
from graph.state import Query
from graph.turn import Turn, prune_after_turn, run_turn
from memory.errors import InvalidInput, MessageIdConflict, ThreadlineError
from memory.models import ChatSession

if TYPE_CHECKING:
    from app.services import Services

log = logging.getLogger(__name__)
AfterTurn = Callable[[Turn], Awaitable[None]]


class ShuttingDown(ThreadlineError):
    code = "shutting_down"


@dataclass
class ActiveRun:
    run_id: str
    query_id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class RunRegistry:
    def __init__(self) -> None:
        self.active: dict[str, ActiveRun] = {}
        self.after_turn: list[AfterTurn] = []
        self.closing = False
        self._services: Services | None = None

    def bind(self, services: Services) -> None:
        self._services = services
        services.events.on_cancel = self.cancel_local
        services.events.read_message = self._read_message

    @property
    def services(self) -> Services:
        assert self._services is not None, "RunRegistry.bind() was not called"
        return self._services

    async def _read_message(self, message_id: str) -> dict[str, Any] | None:
        row = await self.services.journal.get(message_id)
        return row.as_dict() if row is not None else None

    async def submit(self, session: ChatSession, query: Query) -> list[dict[str, Any]]:
        """Start the turn, or answer a resend from the journal.

        Returns frames for the asking socket alone (a replay); a started run's
        frames reach every watcher through the event bus.
        """
        if self.closing:
            raise ShuttingDown("the server is shutting down; retry in a moment")
        replay = await self._replay(session, query)
        if replay is not None:
            return replay
        if not await self.services.locks.try_acquire(session.id):
            raise SessionBusy("a turn is already running in this session")
        run = ActiveRun(run_id=str(uuid.uuid4()), query_id=query["id"])
        self.active[session.id] = run
        turn = Turn(session.id, session.user_id, session.memory_enabled, query)
        run.task = asyncio.create_task(self._run(run, turn), name=f"turn-{session.id}")
        return []

    async def _replay(self, session: ChatSession, query: Query) -> list[dict[str, Any]] | None:
        """A query id already journaled is never run twice."""
        journal = self.services.journal
        asked = await journal.get(query["id"])
        if asked is None:
            return None
        if asked.session_id != session.id:
            raise MessageIdConflict("this message id is already used in another session")
        if asked.role != "user":
            raise InvalidInput("this message id is not a user message")
        answer = await journal.get(answer_id_for(query["id"]))
        if answer is None:
            return None  # cut off before its answer: run it now
        return [
            {"type": "ack", "id": asked.id, "seq": asked.seq, "replayed": True},
            {"type": "message", "message": answer.as_dict(), "replayed": True},
            {"type": "done", "run_id": None, "replayed": True},
        ]

    async def _run(self, run: ActiveRun, turn: Turn) -> None:
        services, session_id = self.services, turn.session_id
        ctx = services.turn_context()
        ctx.cancel = run.cancel
        started, ok = time.perf_counter(), False
        try:
            async for event in run_turn(
                services.graph,
                services.db.pool,
                ctx,
                turn,
                durability=services.settings.durability,
            ):
                await services.events.publish(session_id, {**event, "run_id": run.run_id})
            ok = True
        except ThreadlineError as exc:
            metrics.TURN_ERRORS.labels(exc.code).inc()
            await self._fail(session_id, run, exc.code, str(exc))
        except DATABASE_DOWN:
            metrics.TURN_ERRORS.labels("database_unavailable").inc()
            log.warning("turn failed: database unavailable", extra={"session_id": session_id})
            await self._fail(
                session_id,
                run,
                "database_unavailable",
                "the database is unavailable; resend to retry",
            )
        except Exception:
            metrics.TURN_ERRORS.labels("internal").inc()
            log.exception("turn failed", extra={"session_id": session_id, "run_id": run.run_id})
            await self._fail(session_id, run, "internal", "the turn failed; resend to retry")
        finally:
            self.active.pop(session_id, None)
            await services.locks.release(session_id)
        if ok:
            metrics.TURNS.inc()
            metrics.TURN_SECONDS.observe(time.perf_counter() - started)
            await services.events.publish(session_id, {"type": "done", "run_id": run.run_id})
            await self._after(turn)

    async def _fail(self, session_id: str, run: ActiveRun, code: str, message: str) -> None:
        frame = {**error_frame(code, message), "run_id": run.run_id, "id": run.query_id}
        await self.services.events.publish(session_id, frame)

    async def _after(self, turn: Turn) -> None:
        """Work after the answer (pruning, memory saving), outside the thread's lock."""
        keep = self.services.settings.checkpoints_keep
        try:
            await prune_after_turn(self.services.db.pool, turn.session_id, keep=keep)
        except psycopg.Error:
            # A concurrent turn's checkpoint raced the prune; the next prune catches up.
            log.warning("checkpoint pruning skipped", extra={"session_id": turn.session_id})
        for hook in self.after_turn:
            try:
                await hook(turn)
            except Exception:
                log.exception("after-turn work failed", extra={"session_id": turn.session_id})

    def cancel_local(self, session_id: str) -> bool:
        run = self.active.get(session_id)
        if run is None:
            return False
        run.cancel.set()
        return True

    async def cancel(self, session_id: str) -> None:
        """Stop generation here, or ask the process that runs it."""
        if not self.cancel_local(session_id):
            await self.services.events.request_cancel(session_id)

    async def drain(self, timeout_s: float) -> None:
        """Take no new turns; let running ones finish within `timeout_s`."""
        self.closing = True
        tasks = [run.task for run in self.active.values() if run.task is not None]
        if not tasks:
            return
        log.info("waiting for %d running turns", len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
