"""Everything a running app holds, opened once by the lifespan and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from langchain_core.language_models import BaseChatModel

from app.events import EventBus
from app.locks import ThreadLocks
from app.memory_saver import MemorySaver
from app.runs import RunRegistry
from app.settings import Settings
from graph.builder import Graph, build_graph
from graph.context import TurnContext
from graph.llm import build_chat_model
from memory.db import Database, open_database
from memory.journal import Journal
from memory.memories import MemoryStore
from memory.sessions import SessionStore
from memory.users import UserStore


@dataclass
class Services:
    settings: Settings
    db: Database
    sessions: SessionStore
    journal: Journal
    users: UserStore
    memories: MemoryStore
    model: BaseChatModel
    graph: Graph
    locks: ThreadLocks
    events: EventBus
    runs: RunRegistry
    memory_saver: MemorySaver = field(init=False)

    def __post_init__(self) -> None:
        self.memory_saver = MemorySaver(self)

    def turn_context(self) -> TurnContext:
        return TurnContext(
            journal=self.journal,
            sessions=self.sessions,
            model=self.model,
            window_messages=self.settings.window_messages,
            max_message_chars=self.settings.max_message_chars,
            memory_loader=self.load_memories,
            memories=self.memories,
        )

    async def load_memories(self, user_id: str, query: str) -> list[dict[str, Any]]:
        return await self.memories.load_relevant(
            user_id,
            query,
            summaries=self.settings.memory_summaries,
            budget_tokens=self.settings.memory_budget_tokens,
        )

    async def close(self) -> None:
        await self.runs.drain(self.settings.shutdown_grace_s)
        await self.memory_saver.close()
        await self.events.close()
        await self.locks.close()
        await self.db.close()


def chat_model(settings: Settings) -> BaseChatModel:
    return build_chat_model(
        api_key=settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        base_url=settings.openai_base_url,
        model=settings.model,
        timeout_s=settings.model_timeout_s,
        max_retries=settings.model_max_retries,
        offline_token_delay_ms=settings.offline_token_delay_ms,
    )


async def open_services(settings: Settings, url: str) -> Services:
    db = await open_database(url, pool_size=settings.db_pool_size)
    anon_ttl = timedelta(hours=settings.anon_ttl_hours)
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    sessions = SessionStore(db, anon_ttl=anon_ttl, retention=retention)
    journal = Journal(db, anon_ttl=anon_ttl)
    locks = ThreadLocks(url)
    events = EventBus(url)
    await locks.open()
    await events.open()
    services = Services(
        settings=settings,
        db=db,
        sessions=sessions,
        journal=journal,
        users=UserStore(db),
        memories=MemoryStore(db),
        model=chat_model(settings),
        graph=build_graph(),
        locks=locks,
        events=events,
        runs=RunRegistry(),
    )
    services.runs.bind(services)
    services.runs.after_turn.append(services.memory_saver.after_turn)
    return services
