"""The vector database (embedded PostgreSQL 18 with pgvector), emptied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from memory.db import Database, open_database
from tests.support.database import truncate_all


@pytest.fixture
async def vector_db(vector_url: str) -> AsyncIterator[Database]:
    truncate_all(vector_url)
    database = await open_database(vector_url, pool_size=4)
    yield database
    await database.close()
