"""A harness for running turns of the real graph on real PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from graph.builder import Graph, build_graph
from graph.context import TurnContext
from graph.offline import OfflineChatModel
from graph.turn import Turn, prune_after_turn, run_turn
from memory.db import Database
from memory.journal import Journal
from memory.sessions import Owner, SessionStore


@dataclass
class Harness:
    db: Database
    sessions: SessionStore
    journal: Journal
    graph: Graph
    model: BaseChatModel
    window_messages: int = 20
    durability: str = "exit"
    checkpoints_keep: int = 1

    def context(self, **overrides: Any) -> TurnContext:
        values: dict[str, Any] = {
            "journal": self.journal,
            "sessions": self.sessions,
            "model": self.model,
            "window_messages": self.window_messages,
        }
        values.update(overrides)
        return TurnContext(**values)

    async def new_session(self) -> str:
        return (await self.sessions.create(Owner(anon_token_hash="t" * 64))).id

    async def ask(
        self, session_id: str, content: str, *, query_id: str | None = None, **ctx: Any
    ) -> list[dict[str, Any]]:
        turn = Turn(
            session_id=session_id,
            user_id=None,
            memory_enabled=False,
            query={"id": query_id or str(uuid.uuid4()), "content": content},
        )
        events = [
            event
            async for event in run_turn(
                self.graph,
                self.db.pool,
                self.context(**ctx),
                turn,
                durability=self.durability,  # type: ignore[arg-type]
                checkpoints_keep=self.checkpoints_keep,
            )
        ]
        # As the server does after `done`:
        await prune_after_turn(
            self.db.pool,
            session_id,
            keep=self.checkpoints_keep,
            durability=self.durability,  # type: ignore[arg-type]
        )
        return events


def answer_of(events: list[dict[str, Any]]) -> str:
    return next(e["message"]["content"] for e in events if e["type"] == "message")


@pytest.fixture
def harness(db: Database, sessions: SessionStore, journal: Journal) -> Harness:
    return Harness(db, sessions, journal, build_graph(), OfflineChatModel())
