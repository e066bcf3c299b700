"""The psycopg pool pings a connection before use only after it rested
(memory/db.py: pool_checks); in steady use it is handed out as it is."""

from __future__ import annotations

from typing import Any

from memory.db import PING_AFTER_IDLE_S, Database, pool_checks


class Connection:
    def __init__(self) -> None:
        self.pings = 0

    async def execute(self, statement: str) -> None:
        self.pings += 1


async def test_a_connection_is_pinged_only_after_resting() -> None:
    now = [1000.0]
    check = pool_checks(clock=lambda: now[0])["check"]
    conn: Any = Connection()
    await check(conn)  # opened just now
    for _ in range(3):  # in steady use
        now[0] += PING_AFTER_IDLE_S / 2
        await check(conn)
    assert conn.pings == 0
    now[0] += PING_AFTER_IDLE_S * 2  # rested
    await check(conn)
    assert conn.pings == 1
    await check(conn)  # taken again at once
    assert conn.pings == 1


async def test_the_pool_takes_connections_back_at_once(db: Database) -> None:
    """No `reset` callback: a connection given back is in the pool when its
    `async with` ends, not after a worker task's turn. (Counted against the pool
    while it was out: the pool may be opening another one meanwhile.)"""
    for _ in range(3):
        async with db.pool.connection() as conn:
            assert (await (await conn.execute("SELECT 1 AS one")).fetchone()) == {"one": 1}
            while_out = db.pool.get_stats()["pool_available"]
        assert db.pool.get_stats()["pool_available"] > while_out
