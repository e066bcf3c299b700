"""What the thread layer is told at start: limits, lifetimes and durability.

`app/settings.py` reads the environment and builds one of these; nothing in
`threads/` reads settings itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from graph.turn import Durability


@dataclass(frozen=True)
class ThreadOptions:
    window_messages: int = 20
    agent_max_steps: int = 4  # execution passes in one answer (the supervisor loop's bound)
    max_message_chars: int = 32_000  # a message, from the socket, REST or an import
    max_import_sessions: int = 1000  # sessions in one import
    max_json_depth: int = 32  # nesting of an imported file
    durability: Durability = "exit"
    graph_slots: int = 0  # graphs run at once in this process (0: no bound)
    checkpoints_keep: int = 1
    anon_ttl: timedelta = timedelta(hours=24)
    retention: timedelta | None = None  # None: signed-in users' threads never expire
    memory_summaries: int = 4
    memory_budget_tokens: int = 1500
    memory_save_delay_ms: int = 0  # test hook: a gap between `done` and the memory save
    cleanup_interval_s: float = 600  # 0: no periodic cleanup
    cleanup_forgets_memories: bool = False
    shutdown_grace_s: float = 20.0
    lock_wait_s: float = 30.0  # how long account deletion waits for running turns
    db_pool_size: int = 10
