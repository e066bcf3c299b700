"""Connections: one SQLAlchemy async engine and one psycopg pool per process, sized together."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
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


@dataclass
class Database:
    """The process's connections to PostgreSQL.

    The engine serves the app tables; the pool serves the checkpointer.
    """

    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: AsyncConnectionPool[AsyncConnection[DictRow]]

    async def close(self) -> None:
        await self.pool.close()
        await self.engine.dispose()


async def open_database(url: str, *, pool_size: int = 10) -> Database:
    """Open the engine and the pool on `url`; half the connections each."""
    half = max(2, pool_size // 2)
    # Short timeouts: while the database is away, a request or a turn should
    # fail fast with "database unavailable", not hang for the default 30 s.
    engine = create_async_engine(
        sqlalchemy_url(url),
        pool_size=half,
        max_overflow=half,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT_S,
        # Errors never carry statement parameters (message content) into logs.
        hide_parameters=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        libpq_url(url),
        min_size=1,
        max_size=half,
        open=False,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": CONNECT_TIMEOUT_S,
        },
        timeout=CONNECT_TIMEOUT_S,
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=False)
    return Database(
        url=url,
        engine=engine,
        sessions=async_sessionmaker(engine, expire_on_commit=False),
        pool=pool,
    )
