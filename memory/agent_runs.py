"""The Agent Server API's runs as rows (migration 0008): the queue of runs that
wait for their thread, and each run's frames, numbered, for joining its stream.

A run is named by the id of the question it answers. Its state: `queued`
(waiting for the thread), `started` (handed to a process's turn), `ended` (its
turn ended: answered, stopped or failed; the journal says which) or `cancelled`
(taken out of the queue before it started).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from memory.db import Database, fetch

KEEP_LOGS = 10  # a thread keeps the frames of its newest runs only


@dataclass(frozen=True)
class AgentRun:
    id: str
    session_id: str
    query: dict[str, Any]
    state: str
    attempt: int


# Several of these run every turn of the Agent Server API: all go straight to
# the psycopg pool (memory.db.fetch), not through SQLAlchemy's session.
_COLUMNS = "id, session_id, query, state, attempt"
# A run asked to start now is `started` in its first attempt from its INSERT on.
_ADD = (
    "INSERT INTO agent_runs (id, session_id, query, state, attempt) "
    "VALUES (%(id)s, %(session_id)s, CAST(%(query)s AS jsonb), %(state)s, %(attempt)s) "
    "ON CONFLICT (id) DO NOTHING RETURNING " + _COLUMNS
)
# A run asked again from an earlier state (regenerate, edit) starts a new log.
_RESTART = (
    "WITH gone AS (DELETE FROM agent_run_events WHERE run_id = %(id)s) "
    "INSERT INTO agent_runs (id, session_id, query, state, attempt) "
    "VALUES (%(id)s, %(session_id)s, CAST(%(query)s AS jsonb), %(state)s, %(attempt)s) "
    "ON CONFLICT (id) DO UPDATE SET query = excluded.query, state = excluded.state, "
    "attempt = excluded.attempt, updated_at = now() "
    "WHERE agent_runs.session_id = excluded.session_id "
    "RETURNING " + _COLUMNS
)
_GET = f"SELECT {_COLUMNS} FROM agent_runs WHERE id = %(id)s AND session_id = %(session_id)s"
_OPEN_OF = (
    f"SELECT {_COLUMNS} FROM agent_runs WHERE session_id = %(session_id)s "
    "AND state IN ('queued', 'started') ORDER BY position"
)
# The head of a thread's queue, claimed (Recorder start counts the attempt).
_TAKE = (
    "UPDATE agent_runs SET state = 'started', updated_at = now() "
    "WHERE id = (SELECT id FROM agent_runs WHERE session_id = %(session_id)s "
    "AND state IN ('queued', 'started') ORDER BY position LIMIT 1) "
    "AND (state = 'queued' OR updated_at < now() - make_interval(secs => %(stale_s)s)) "
    "RETURNING " + _COLUMNS
)
_MARK_STARTED = (
    "UPDATE agent_runs SET state = 'started', attempt = attempt + 1, updated_at = now() "
    "WHERE id = %(id)s RETURNING attempt"
)
_REQUEUE = (
    "UPDATE agent_runs SET state = 'queued', updated_at = now() "
    "WHERE id = %(id)s AND state = 'started'"
)
_SET_STATE = (
    "UPDATE agent_runs SET state = %(state)s, updated_at = now() "
    "WHERE id = %(id)s AND state IN ('queued', 'started') RETURNING id"
)
_QUEUED_OF_USER = (
    "SELECT r.id, r.session_id, r.query, r.state, r.attempt FROM agent_runs r "
    "JOIN chat_sessions s ON s.id = r.session_id "
    "WHERE s.user_id = %(user_id)s AND r.state = 'queued' ORDER BY r.position LIMIT %(limit)s"
)
_WAITING = (
    "SELECT DISTINCT session_id FROM agent_runs WHERE state IN ('queued', 'started') "
    "AND (state = 'queued' OR updated_at < now() - make_interval(secs => %(stale_s)s)) LIMIT 100"
)
# The frames come as one JSON array beside their numbers: as a jsonb[], psycopg
# would escape each frame's text into the array's literal (3x the CPU).
_INSERT_FRAMES = (
    "INSERT INTO agent_run_events (run_id, n, frame) "
    "SELECT %(run_id)s, n, frame "
    "FROM ROWS FROM (unnest(%(ns)s::int[]), jsonb_array_elements(%(frames)s::jsonb)) "
    "AS t(n, frame) ON CONFLICT DO NOTHING"
)
_LOG = (
    "WITH touched AS (UPDATE agent_runs SET updated_at = now() WHERE id = %(run_id)s) "
    + _INSERT_FRAMES
)
_AFTER = (
    "SELECT n, frame FROM agent_run_events WHERE run_id = %(run_id)s AND n > %(after)s "
    "AND n < %(before)s ORDER BY n LIMIT %(limit)s"
)
# Beyond a thread's newest KEEP_LOGS runs, the rows of runs that are over go.
_PRUNE = (
    "DELETE FROM agent_runs WHERE session_id = %(session_id)s AND state IN ('ended', 'cancelled') "
    "AND position < (SELECT position FROM agent_runs WHERE session_id = %(session_id)s "
    "ORDER BY position DESC OFFSET %(keep)s LIMIT 1) + 1"
)


# A run's turn is over: its last frames logged, the run `ended`, the thread's
# logs beyond its newest KEEP_LOGS pruned (as _PRUNE), and whether other runs of
# the thread wait, in one statement. The parts see the thread as it was before
# it, so the run being ended is never counted as waiting (nor pruned: it is
# among the newest).
_END = (
    "WITH logged AS (" + _INSERT_FRAMES + "), "
    "ended AS (UPDATE agent_runs SET state = 'ended', updated_at = now() "
    "WHERE id = %(run_id)s AND state IN ('queued', 'started')), "
    "pruned AS (" + _PRUNE + ") "
    "SELECT EXISTS (SELECT 1 FROM agent_runs WHERE session_id = %(session_id)s "
    "AND state IN ('queued', 'started') AND id <> %(run_id)s) AS waiting"
)


def _frames(run_id: str, frames: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """_INSERT_FRAMES's parameters."""
    ns = [n for n, _ in frames]
    return {"run_id": run_id, "ns": ns, "frames": json.dumps([frame for _, frame in frames])}


def _run(row: dict[str, Any]) -> AgentRun:
    return AgentRun(row["id"], row["session_id"], dict(row["query"]), row["state"], row["attempt"])


class AgentRunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, run_id: str, session_id: str, query: dict[str, Any], *, queued: bool, fresh: bool
    ) -> tuple[AgentRun, bool] | None:
        """A new run (`queued`, or `started` in its first attempt) and True; the
        run as it was and False when it was asked before (a resend keeps its row
        and its log); None when the id is another thread's run. With `fresh` (a
        run from an earlier state) a run of the same id starts over, log emptied."""
        params = {
            "id": run_id,
            "session_id": session_id,
            "query": json.dumps(query),
            "state": "queued" if queued else "started",
            "attempt": 0 if queued else 1,
        }
        rows = await fetch(self.db, _RESTART if fresh else _ADD, params)
        if rows:
            return _run(rows[0]), True
        found = await self.get(session_id, run_id)
        return (found, False) if found is not None else None

    async def get(self, session_id: str, run_id: str) -> AgentRun | None:
        rows = await fetch(self.db, _GET, {"id": run_id, "session_id": session_id})
        return _run(rows[0]) if rows else None

    async def open_runs(self, session_id: str) -> list[AgentRun]:
        """The thread's runs not yet over (queued or started), in queue order."""
        return [_run(row) for row in await fetch(self.db, _OPEN_OF, {"session_id": session_id})]

    async def queued_of_user(self, user_id: str, limit: int) -> list[AgentRun]:
        """The user's queued runs, on all their threads, in queue order."""
        rows = await fetch(self.db, _QUEUED_OF_USER, {"user_id": user_id, "limit": limit})
        return [_run(row) for row in rows]

    async def take_next(self, session_id: str, stale_s: float) -> AgentRun | None:
        """The thread's first open run, marked `started`: a queued one, or a started
        one nothing has written about for `stale_s` (its process went away)."""
        rows = await fetch(self.db, _TAKE, {"session_id": session_id, "stale_s": stale_s})
        return _run(rows[0]) if rows else None

    async def requeue(self, run_id: str) -> None:
        """A claimed run that could not start waits again, in its place."""
        await fetch(self.db, _REQUEUE, {"id": run_id})

    async def mark_started(self, run_id: str) -> int:
        """The run's turn was handed over here; returns its attempt (1 for the first)."""
        rows = await fetch(self.db, _MARK_STARTED, {"id": run_id})
        return int(rows[0]["attempt"]) if rows else 1

    async def finish(self, run_id: str, state: str = "ended") -> bool:
        """`ended` or `cancelled`; False when the run was over already."""
        return bool(await fetch(self.db, _SET_STATE, {"id": run_id, "state": state}))

    async def end(
        self,
        run_id: str,
        session_id: str,
        frames: list[tuple[int, dict[str, Any]]] | None = None,
        keep: int = KEEP_LOGS,
    ) -> bool:
        """The run's turn is over, its last `frames` logged with it (`_END`): True
        when other runs of the thread wait."""
        params = {"session_id": session_id, "keep": keep, **_frames(run_id, frames or [])}
        rows = await fetch(self.db, _END, params)
        return bool(rows[0]["waiting"])

    async def waiting_sessions(self, stale_s: float) -> list[str]:
        rows = await fetch(self.db, _WAITING, {"stale_s": stale_s})
        return [row["session_id"] for row in rows]

    async def log(self, run_id: str, frames: list[tuple[int, dict[str, Any]]]) -> None:
        """Numbered frames of the run, in one statement (a number logged twice keeps
        the first)."""
        if frames:
            await fetch(self.db, _LOG, _frames(run_id, frames))

    async def frames_after(
        self, run_id: str, after: int, *, before: int = 2**31 - 1, limit: int = 500
    ) -> list[tuple[int, dict[str, Any]]]:
        """The run's logged frames numbered above `after` (and below `before`)."""
        params = {"run_id": run_id, "after": after, "before": before, "limit": limit}
        return [(row["n"], dict(row["frame"])) for row in await fetch(self.db, _AFTER, params)]
