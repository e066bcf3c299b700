"""An account's own retention: the cleanup deletes its threads idle longer than
it, and the memories learned from them, as a deletion with `forget` would; other
accounts, newer threads and memories learned elsewhere stay."""

from __future__ import annotations

import psycopg

from memory.db import libpq_url
from memory.memories import MemoryDraft
from memory.sessions import Owner
from tests.support.users import create_user
from threads.runtime import Runtime


def idle_for(database_url: str, session_id: str, days: int) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            "UPDATE chat_sessions SET last_activity_at = now() - make_interval(days => %s)"
            " WHERE id = %s",
            (days, session_id),
        )


def left(database_url: str, table: str, column: str, value: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = %s", (value,)).fetchone()
    return int(row[0]) if row else 0


async def test_an_accounts_retention_deletes_old_threads_and_what_was_learned(
    runtime: Runtime, database_url: str
) -> None:
    deps, users = runtime.deps, runtime.threads.users
    keeper = await create_user(deps.db, "keeper@example.com")
    other = await create_user(deps.db, "other@example.com")
    assert (await users.set_retention(keeper, 30)).retention_days == 30
    old = await deps.sessions.create(Owner(user_id=keeper))
    recent = await deps.sessions.create(Owner(user_id=keeper))
    others_old = await deps.sessions.create(Owner(user_id=other))
    for session, who in ((old, keeper), (recent, keeper), (others_old, other)):
        draft = MemoryDraft("fact", None, f"learned in {session.id}")
        await deps.memories.add(who, draft, source_session_id=session.id)
    await deps.memories.add(keeper, MemoryDraft("preference", "tone", "Prefers short answers"))
    idle_for(database_url, old.id, 31)
    idle_for(database_url, recent.id, 29)
    idle_for(database_url, others_old.id, 400)

    expired = await runtime.threads.find_expired()
    assert [(e.id, e.forget) for e in expired] == [(old.id, True)]
    assert await runtime.threads.expire() == 1

    assert left(database_url, "chat_sessions", "id", old.id) == 0
    assert left(database_url, "memories", "source_session_id", old.id) == 0
    assert left(database_url, "chat_sessions", "id", recent.id) == 1
    assert left(database_url, "memories", "source_session_id", recent.id) == 1
    assert left(database_url, "memories", "user_id", keeper) == 2  # recent's fact, the preference
    assert left(database_url, "chat_sessions", "id", others_old.id) == 1  # no retention set
    assert left(database_url, "memories", "user_id", other) == 1

    await users.set_retention(keeper, None)  # off again: nothing more goes
    idle_for(database_url, recent.id, 400)
    assert await runtime.threads.find_expired() == []
