"""Bring a database up to date: Alembic for app tables, the checkpointer's own setup()."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from langgraph.checkpoint.postgres import PostgresSaver
from psycopg.rows import dict_row
from sqlalchemy import create_engine, text

from memory.db import libpq_url, sqlalchemy_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any fixed 64-bit number; every process that migrates takes the same lock.
SCHEMA_LOCK_KEY = 7_346_211_905


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate_sync(url: str) -> None:
    """Run Alembic and the checkpointer's setup under one advisory lock.

    Several processes starting at once would otherwise race on CREATE TABLE.
    """
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            conn.commit()
            try:
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
                with psycopg.connect(
                    libpq_url(url), autocommit=True, prepare_threshold=0, row_factory=dict_row
                ) as saver_conn:
                    PostgresSaver(saver_conn).setup()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()
