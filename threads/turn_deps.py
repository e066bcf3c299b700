"""What a turn reads and writes (`TurnDeps`): storage, the models, the graph,
and the context each turn's graph runs with (graph/context.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from graph.builder import Graph
from graph.context import MemoryLoader, OwedSave, TurnContext
from graph.llm import Models
from graph.slots import GraphSlots
from memory.db import Database
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.sessions import SessionStore
from threads.options import ThreadOptions


class SettleSaves(Protocol):
    """Finish the memory saves a user's threads owe (but `but`'s), see
    threads/memory_saver.py: settle."""

    async def __call__(self, user_id: str, *, but: str | None = None) -> None: ...


@dataclass
class TurnDeps:
    """What a turn reads and writes: storage, the model, the graph."""

    db: Database
    sessions: SessionStore
    journal: Journal
    memories: MemoryStore
    model: BaseChatModel  # the default
    graph: Graph
    models: Models | None = None  # the others a chat may choose (ChatSession.model_choice)
    # The memory saver's save (threads/memory_saver.py), for a request to
    # forget something said a moment ago (graph/nodes.py: planning).
    save_owed: OwedSave | None = None
    # The memory saver's settle: a user's saves owed by their other threads,
    # finished before a turn loads that user's memories.
    settle_saves: SettleSaves | None = None

    def model_named(self, name: str | None) -> BaseChatModel:
        return self.models.named(name) if self.models is not None else self.model

    def context(
        self,
        options: ThreadOptions,
        cancel: asyncio.Event | None = None,
        model: BaseChatModel | None = None,
        slots: GraphSlots | None = None,
        session_id: str | None = None,
    ) -> TurnContext:
        """The context of one turn of `session_id` (its memory load waits for
        what the user's other threads still owe, `settle_saves`)."""
        return TurnContext(
            journal=self.journal,
            sessions=self.sessions,
            model=model or self.model,
            window_messages=options.window_messages,
            max_steps=options.agent_max_steps,
            max_message_chars=options.max_message_chars,
            memory_loader=self.load_memories_for(options, session_id),
            memories=self.memories,
            save_owed=self.save_owed,
            cancel=cancel,
            slots=slots,
        )

    def load_memories_for(self, options: ThreadOptions, session_id: str | None) -> MemoryLoader:
        async def load(user_id: str, query: str) -> list[dict[str, Any]]:
            if self.settle_saves is not None:
                await self.settle_saves(user_id, but=session_id)
            return await self.memories.load_relevant(
                user_id,
                query,
                summaries=options.memory_summaries,
                budget_tokens=options.memory_budget_tokens,
            )

        return load
