"""Connections: one SQLAlchemy async engine and one psycopg pool per process, sized together."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import ExecStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import event, exc
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form (psycopg 3 driver) of a libpq-style URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The libpq form of a URL that may carry a SQLAlchemy driver name."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


CONNECT_TIMEOUT_S = 5
# A pooled connection is pinged before use only after resting this long. A ping
# on every checkout (pool_pre_ping, the pool's check_connection) is one more
# round trip per unit of work, a fifth of a turn's; a connection in steady use
# has just proved itself, and one that broke meanwhile fails its statement
# once and is replaced (SQLAlchemy then recycles the whole pool).
PING_AFTER_IDLE_S = 1.0


@dataclass
class Database:
    """The process's connections to PostgreSQL (`url`: the database itself).

    The engine serves the app tables: `sessions` for units of work (a
    transaction each), `autocommit` for a unit of work that is one statement
    (a read, or a write that is whole in one statement), which spares the
    BEGIN and the COMMIT or ROLLBACK round trips. The pool serves the
    checkpointer (autocommit too).
    """

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    autocommit: async_sessionmaker[AsyncSession]
    pool: AsyncConnectionPool[AsyncConnection[DictRow]]

    async def close(self) -> None:
        await self.pool.close()
        await self.engine.dispose()


async def fetch(db: Database, statement: str, params: Any) -> list[DictRow]:
    """One statement on the psycopg pool (autocommit), its rows as dicts.

    For the statements every turn runs (the rights, the journal's append and
    lookup, the Agent Server API's run store, the nearest-memory search): there
    SQLAlchemy's session, connection and result layers cost two to three times
    the statement's own client work (docs/benchmarks.md, the fast path);
    everything else keeps the engine and the ORM.
    """
    async with db.pool.connection() as conn:
        cur = await conn.execute(statement, params)
        # Whether it returned rows, read off the result (`cur.description` would
        # build a Column object for every column to say the same).
        result = cur.pgresult
        returned_rows = result is not None and result.status == ExecStatus.TUPLES_OK
        return await cur.fetchall() if returned_rows else []


def for_psycopg(statement: Any) -> tuple[str, dict[str, Any]]:
    """A SQLAlchemy statement compiled once for `fetch` and psycopg's cursors: its
    SQL, with psycopg's named placeholders, and the values of the literals it
    binds (a call passes `{**literals, **its own}`; its own are the statement's
    named parameters, which have no value here). No expanding parameters."""
    compiled = statement.compile(dialect=psycopg_dialect.dialect())  # type: ignore[no-untyped-call]
    literals = {key: value for key, value in compiled.params.items() if value is not None}
    return str(compiled), literals


def rested(since: float | None, now: float | None = None) -> bool:
    """Whether a connection idle since `since` (until `now`) rested long enough
    to ping it (None: it was opened just now)."""
    now = time.monotonic() if now is None else now
    return since is not None and now - since > PING_AFTER_IDLE_S


def ping_rested_engine_connections(engine: AsyncEngine) -> None:
    """pool_pre_ping, for connections that rested: a failed ping makes the pool
    take (or open) another connection, as pre-ping does."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def rest(dbapi_connection: Any, record: Any) -> None:
        record.info["rested_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if not rested(record.info.get("rested_since")):
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError("connection lost while resting") from error


def pool_checks(clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The psycopg pool's `check`: the same rule as the engine's, its rest counted
    from when the connection was last taken (its uses are short). Not from when
    it was given back: that would take a `reset` callback, and with one the pool
    hands every connection given back to a worker task (a queue and a task's
    turn per statement of the hot path; 1% of a turn's CPU) instead of taking
    it back at once."""
    taken: weakref.WeakKeyDictionary[AsyncConnection[DictRow], float] = weakref.WeakKeyDictionary()

    async def check(conn: AsyncConnection[DictRow]) -> None:
        last, taken[conn] = taken.get(conn), clock()
        if rested(last, taken[conn]):
            await conn.execute("")

    return {"check": check}


async def open_database(
    url: str, *, pool_size: int = 10, via: str | None = None, keep_open: bool = False
) -> Database:
    """Open the engine and the pool on `url`; half the connections each.

    With `keep_open` (a server) the pool opens all its connections at once, in
    the background, and keeps them: a burst of questions after a start or a
    quiet spell finds them open, instead of waiting while the pool opens them
    one at a time (bench/ws_load's first turns). Otherwise it opens them as
    they are needed.

    With `via`, a pooler in transaction mode (PgBouncer) in front of `url`: the
    engine and the pool connect through it, and `Database.url` stays `url`, for
    what needs a session of its own (advisory locks, LISTEN). A pooler's
    server connections change between transactions, so no prepared statements
    go through it (psycopg prepares a statement it runs often, and the
    checkpointer's pool prepares every one).
    """
    half = max(2, pool_size // 2)
    pooled = via or url
    prepare: dict[str, Any] = {"prepare_threshold": None} if via else {}
    # Short timeouts: while the database is away, a request or a turn should
    # fail fast with "database unavailable", not hang for the default 30 s.
    # Every connection the engine opens stays open once made (no overflow): an
    # overflow connection is closed when given back, and under load the engine
    # opened and closed them over and over (a PostgreSQL backend each time).
    engine = create_async_engine(
        sqlalchemy_url(pooled),
        pool_size=2 * half,
        max_overflow=0,
        pool_timeout=CONNECT_TIMEOUT_S,
        # Errors never carry statement parameters (message content) into logs.
        hide_parameters=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, **prepare},
    )
    ping_rested_engine_connections(engine)
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        libpq_url(pooled),
        min_size=half if keep_open else 1,
        max_size=half,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_S,
            **prepare,
        },
        timeout=CONNECT_TIMEOUT_S,
        **pool_checks(),
    )
    await pool.open(wait=False)
    return Database(
        url=url,
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        autocommit=async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        ),
        pool=pool,
    )
