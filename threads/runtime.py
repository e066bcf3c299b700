"""Everything a running process holds, opened in order and closed in reverse.

`open_runtime` is the one place that builds the thread layer: the server's
lifespan, the CLI, the MCP server and the terminal chat all enter it. One
`AsyncExitStack` closes what was opened, also when start-up fails half way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from graph.builder import build_graph
from graph.llm import Models
from memory.agent_runs import AgentRunStore
from memory.db import open_database
from memory.embeddings import Embedder
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.sessions import SessionStore
from memory.users import UserStore
from memory.vectors import Vectors
from threads.accounts import Accounts
from threads.agent_runs import AgentRuns
from threads.cleanup import periodic_cleanup
from threads.events import EventBus
from threads.locks import ThreadLocks
from threads.memory_saver import MemorySaver
from threads.operations import Threads
from threads.options import ThreadOptions
from threads.runs import RunRegistry
from threads.turn_deps import TurnDeps

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The thread layer of one process: `threads` is the door every entry point uses."""

    threads: Threads
    accounts: Accounts
    agent_runs: AgentRuns

    @property
    def deps(self) -> TurnDeps:
        return self.threads.deps

    @property
    def users(self) -> UserStore:
        return self.threads.users

    @property
    def memories(self) -> MemoryStore:
        return self.threads.deps.memories

    @property
    def vectors(self) -> Vectors | None:
        return self.threads.deps.memories.vectors


@asynccontextmanager
async def open_runtime(
    url: str,
    options: ThreadOptions,
    model: BaseChatModel | Models,
    *,
    background: bool = False,
    embedder: Embedder | None = None,
    pooled_url: str | None = None,
) -> AsyncIterator[Runtime]:
    """Open the database, locks and event bus, and build the thread layer on them.

    `pooled_url`: a pooler in transaction mode (PgBouncer) in front of `url`,
    for the pooled queries; the thread locks, LISTEN/NOTIFY and the cleanup's
    election keep their own sessions on `url` (docs/scaling.md).

    With `background` (the server), owed memory saves are finished and expired
    sessions cleaned up periodically, and memories owed an embedding (new ones,
    or all after a change of model) embedded; on exit, running turns get
    `options.shutdown_grace_s` to finish before anything closes.
    """
    models = model if isinstance(model, Models) else Models.single(model)
    model = models.default
    async with AsyncExitStack() as stack:
        db = await open_database(
            url, pool_size=options.db_pool_size, via=pooled_url, keep_open=background
        )
        stack.push_async_callback(db.close)
        sessions = SessionStore(db, anon_ttl=options.anon_ttl, retention=options.retention)
        journal = Journal(db, anon_ttl=options.anon_ttl)
        vectors = Vectors(db, embedder)
        stack.push_async_callback(vectors.close)
        await vectors.open()
        memories = MemoryStore(db, vectors)
        deps = TurnDeps(db, sessions, journal, memories, model, build_graph(), models)
        locks = ThreadLocks(url)
        stack.push_async_callback(locks.close)
        await locks.open()
        events = EventBus(url, journal)
        stack.push_async_callback(events.close)
        await events.open()
        saver = MemorySaver(model, memories, delay_ms=options.memory_save_delay_ms)
        stack.push_async_callback(saver.close)
        deps.save_owed, deps.settle_saves = saver.save, saver.settle
        runs = RunRegistry(deps, locks, events, options, after_turn=[saver.after_turn])
        threads = Threads(deps, UserStore(db), locks, events, runs, saver, options)
        agent_runs = AgentRuns(threads, AgentRunStore(db))
        stack.push_async_callback(agent_runs.close)
        # Before agent_runs closes, the turns drain: its recorders end with them.
        stack.push_async_callback(runs.drain, options.shutdown_grace_s)
        if background:
            agent_runs.start_scanning()
            saver.start_owed_saves()
            if vectors.on:
                await stack.enter_async_context(backfilling(vectors))
            await stack.enter_async_context(periodic_cleanup(threads))
        yield Runtime(threads, Accounts(threads), agent_runs)


@asynccontextmanager
async def backfilling(vectors: Vectors) -> AsyncIterator[None]:
    """Embed what is owed (after a change of model: every memory) in the
    background, batch by batch, while the server serves."""

    async def run() -> None:
        owed = await vectors.owed()
        if owed:
            log.info("embedding %d memories with %s", owed, vectors.model)
            done = await vectors.backfill()
            log.info("embedded %d memories", done)

    task = asyncio.create_task(run(), name="embedding backfill")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
