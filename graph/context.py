"""What a run needs besides its state: storage, the model, limits, a cancel switch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from graph.slots import GraphSlots
from memory.futures import retrieved
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.models import ChatMessage
from memory.sessions import SessionStore


class MemoryLoader(Protocol):
    """Planning's seam for long-term memory: the memories relevant to a query."""

    async def __call__(self, user_id: str, query: str) -> list[dict[str, Any]]: ...


class OwedSave(Protocol):
    """Finish a session's memory save now, of the messages before `before_seq`
    (threads/memory_saver.py); True when it wrote something."""

    async def __call__(self, session_id: str, *, before_seq: int | None = None) -> bool: ...


@dataclass
class TurnContext:
    journal: Journal
    sessions: SessionStore
    model: BaseChatModel
    window_messages: int = 20
    max_message_chars: int = 32_000
    max_steps: int = 4  # execution passes a turn may take (the supervisor loop's bound)
    memory_loader: MemoryLoader | None = None
    memories: MemoryStore | None = None  # for the agent's memory tools
    save_owed: OwedSave | None = None  # for a request to forget (graph/nodes.py: planning)
    cancel: asyncio.Event | None = None
    # The process's graph slots (graph/slots.py): an acknowledged turn waits
    # there to run its graph (run_turn). None: it runs at once.
    slots: GraphSlots | None = None
    # The turn's question as journal_question journaled it before the graph ran, and
    # whether that append wrote it (False: it was there already, a resend).
    journaled: tuple[ChatMessage, bool] | None = None
    # Memory loads begun early (start_loading_memories), by (user id, question).
    _early: dict[tuple[str, str], asyncio.Future[list[dict[str, Any]]]] = field(
        default_factory=dict, repr=False
    )

    def start_loading_memories(self, user_id: str, query: str) -> None:
        """Begin planning's memory load now: run_turn calls it before it journals
        the question, so the load (the question's embedding above all) runs beside
        the journal write and the graph's first node instead of after them."""
        if self.memory_loader is None or (user_id, query) in self._early:
            return
        loading = asyncio.ensure_future(self.memory_loader(user_id, query))
        loading.add_done_callback(retrieved)  # a turn that ends before planning
        self._early[(user_id, query)] = loading

    async def load_memories(
        self, user_id: str, query: str, *, fresh: bool = False
    ) -> list[dict[str, Any]]:
        """The memories relevant to `query` (begun early, or loaded now; `fresh`:
        loaded now, a load begun early dropped)."""
        loading = self._early.pop((user_id, query), None)
        if loading is not None and fresh:
            loading.cancel()
        elif loading is not None:
            return await loading
        assert self.memory_loader is not None
        return await self.memory_loader(user_id, query)
