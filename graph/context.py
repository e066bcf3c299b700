"""What a run needs besides its state: storage, the model, limits, a cancel switch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from memory.journal import Journal
from memory.memories import MemoryStore
from memory.sessions import SessionStore


class MemoryLoader(Protocol):
    """Planning's seam for long-term memory: the memories relevant to a query."""

    async def __call__(self, user_id: str, query: str) -> list[dict[str, Any]]: ...


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
    cancel: asyncio.Event | None = None
