"""Run one turn of a thread: the graph on its own saver, events streamed out."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from langchain_core.runnables import RunnableConfig

from graph.builder import Graph
from graph.context import TurnContext
from graph.state import Query
from memory.checkpoints import Pool, RunSaver, delete_thread, new_saver, prune_thread
from memory.errors import InvalidInput, ThreadlineError
from memory.journal import NewMessage, check_message
from memory.models import ChatMessage
from memory.sessions import question_title

log = logging.getLogger(__name__)
Durability = Literal["exit", "async", "sync"]


@dataclass
class Turn:
    session_id: str
    user_id: str | None
    memory_enabled: bool
    query: Query


def thread_config(session_id: str, user_id: str | None) -> RunnableConfig:
    """`thread_id` is the session id; `user_id` rides along into checkpoint metadata."""
    return {
        "configurable": {"thread_id": session_id, "user_id": user_id},
        "metadata": {"user_id": user_id},
    }


def validate_query(query: Query, max_chars: int) -> None:
    """Refuse a query that could never be journaled: empty, too long, NUL, bad id."""
    content = query.get("content")
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput("message is empty")
    if len(content) > max_chars:
        raise InvalidInput(f"message is longer than {max_chars} characters")
    check_message(NewMessage(id=str(query.get("id")), role="user", content=content))


async def run_turn(
    graph: Graph,
    pool: Pool,
    ctx: TurnContext,
    turn: Turn,
    *,
    durability: Durability = "exit",
    checkpoints_keep: int = 1,
) -> AsyncIterator[dict[str, Any]]:
    """Run `turn` and yield its events (ack, progress, memory_loaded, token, message).

    `journal_question`, then the journaled turn's `events`: see both.
    """
    journaled = await journal_question(
        graph, pool, ctx, turn, durability=durability, checkpoints_keep=checkpoints_keep
    )
    async for event in journaled.events():
        yield event


async def journal_question(
    graph: Graph,
    pool: Pool,
    ctx: TurnContext,
    turn: Turn,
    *,
    durability: Durability = "exit",
    checkpoints_keep: int = 1,
) -> JournaledTurn:
    """Journal the turn's question (one INSERT); the graph is yet to run.

    Beside that INSERT the thread's checkpoint is read (the graph's first wait,
    `RunSaver.read_ahead`) and a logged-in user's memories begin loading
    (planning awaits them). A turn that will wait for a graph slot
    (`ctx.slots`) does not read ahead: its read would only compete for the
    pool with the INSERTs of the turns it waits behind.

    With `checkpoints_keep` 1 and `exit` durability (the defaults) the graph's
    checkpoint replaces the thread's older ones as it is written; otherwise
    they are pruned after the turn (`prune_after_turn`).

    `created` False: the question was journaled before (a resend; the caller
    decides whether it still needs its answer). Either way the returned turn's
    `events` are run or it is `abandon`ed.
    """
    # A bad turn is refused before the checkpointer sees it: LangGraph saves a
    # checkpoint even for a run that fails, and a refused turn writes nothing.
    validate_query(turn.query, ctx.max_message_chars)
    content = turn.query["content"]
    if turn.user_id and turn.memory_enabled:  # its embedding first: the longest wait
        ctx.start_loading_memories(turn.user_id, content)
    saver = new_saver(pool, keep_latest_alone=prunes_as_it_puts(durability, checkpoints_keep))
    if ctx.slots is None or not ctx.slots.locked():
        saver.read_ahead(turn.session_id)
    try:
        row, created = await ctx.journal.append(
            turn.session_id,
            NewMessage(
                id=turn.query["id"],
                role="user",
                content=content,
                metadata={"run": turn.query["run"]} if "run" in turn.query else {},
            ),
            title=question_title(content),  # the first question names its session
        )
    except BaseException:
        saver.discard_read_ahead()
        raise
    ctx.journaled = (row, created)
    return JournaledTurn(row, created, graph, saver, pool, ctx, turn, durability)


@dataclass
class JournaledTurn:
    """A turn whose question is journaled and whose graph is yet to run."""

    row: ChatMessage
    created: bool  # False: it was journaled before this turn (a resend)
    graph: Graph
    saver: RunSaver
    pool: Pool
    ctx: TurnContext
    turn: Turn
    durability: Durability

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """`ack` (it does not wait for the graph, nor for a graph slot), then the
        graph's events. When the iterator ends, the answer is journaled and the
        checkpoint durable (and the older ones gone, for a thread that keeps
        one; else they are left to `prune_after_turn`, after `done`)."""
        row, turn = self.row, self.turn
        try:
            yield {"type": "ack", "id": row.id, "seq": row.seq, "message": row.as_dict()}
            # An acknowledged turn waits here for a graph slot (graph/slots.py).
            async with self.ctx.slots or contextlib.nullcontext():
                config = thread_config(turn.session_id, turn.user_id)
                runnable = self.graph.copy(update={"checkpointer": self.saver})
                inputs = {
                    "session_id": turn.session_id,
                    "user_id": turn.user_id,
                    "memory_enabled": turn.memory_enabled,
                    "query": {"id": turn.query["id"], "content": turn.query["content"]},
                }
                async for event in _run_graph(
                    runnable, self.pool, inputs, config, self.ctx, self.durability
                ):
                    yield event
        finally:
            self.abandon()  # a read begun and never taken (the turn ended first)

    def abandon(self) -> None:
        """Drop what was begun for the graph: a turn that will not run it."""
        self.saver.discard_read_ahead()


async def _run_graph(
    runnable: Graph,
    pool: Pool,
    inputs: dict[str, Any],
    config: RunnableConfig,
    ctx: TurnContext,
    durability: Durability,
) -> AsyncIterator[dict[str, Any]]:
    for attempt in (1, 2):
        started = False
        try:
            async for event in runnable.astream(
                inputs, config, context=ctx, stream_mode="custom", durability=durability
            ):
                started = True
                yield event
            return
        except (ThreadlineError, psycopg.Error):
            raise
        except Exception:
            # Failing before the first node ran means the checkpoint could not
            # be read (a state schema changed between releases). It is only a
            # cache of the journal: drop it, and initialize rebuilds the window.
            if started or attempt == 2:
                raise
            session_id = config["configurable"]["thread_id"]
            log.warning("unreadable checkpoint dropped", extra={"session_id": session_id})
            await delete_thread(pool, session_id)


def prunes_as_it_puts(durability: Durability, keep: int) -> bool:
    """Whether a turn's checkpoint put drops the thread's older checkpoints: when
    one is kept and the run writes one checkpoint, at its end (`exit`). A run
    that writes one per step also writes each step's pending writes beside
    them, some after the next step's checkpoint: those are pruned after it."""
    return keep == 1 and durability == "exit"


async def prune_after_turn(
    pool: Pool, session_id: str, *, keep: int = 1, durability: Durability = "exit"
) -> None:
    """Keep a thread's newest `keep` checkpoints: after-answer work, outside the
    lock. Nothing to do when the turn's put pruned already (`prunes_as_it_puts`)."""
    if not prunes_as_it_puts(durability, keep):
        await prune_thread(pool, session_id, keep=keep)


async def read_window(graph: Graph, pool: Pool, session_id: str) -> dict[str, Any]:
    """The latest checkpointed state of a thread (what the model would see)."""
    runnable = graph.copy(update={"checkpointer": new_saver(pool)})
    snapshot = await runnable.aget_state(thread_config(session_id, None))
    return dict(snapshot.values)
