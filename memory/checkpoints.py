"""The LangGraph checkpointer on the shared pool, and keeping its tables small."""

from __future__ import annotations

import asyncio
from typing import cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from memory.futures import retrieved

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

# Keep the newest `keep` checkpoints of a thread's root namespace, then drop the
# writes and blobs that no remaining checkpoint refers to: one statement, so one
# round trip in autocommit. Its parts share one snapshot, in which the dropped
# checkpoints are still visible: the checks name them (`gone`) to leave them out.
# A checkpoint committed after the snapshot is invisible here, so neither it nor
# anything it wrote is touched (it can refer to no blob that only a dropped,
# older checkpoint had: channel versions only grow).
_PRUNE_SQL = """
WITH gone AS (
    DELETE FROM checkpoints c
     WHERE c.thread_id = %(t)s AND c.checkpoint_id NOT IN (
        SELECT checkpoint_id FROM checkpoints
         WHERE thread_id = %(t)s AND checkpoint_ns = c.checkpoint_ns
         ORDER BY checkpoint_id DESC LIMIT %(keep)s)
    RETURNING c.checkpoint_ns, c.checkpoint_id
), kept AS (
    SELECT c.checkpoint_ns, c.checkpoint_id, c.checkpoint
      FROM checkpoints c
     WHERE c.thread_id = %(t)s AND NOT EXISTS (
        SELECT 1 FROM gone g
         WHERE g.checkpoint_ns = c.checkpoint_ns AND g.checkpoint_id = c.checkpoint_id)
), writes AS (
    DELETE FROM checkpoint_writes w
     WHERE w.thread_id = %(t)s AND NOT EXISTS (
        SELECT 1 FROM kept c
         WHERE c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id)
)
DELETE FROM checkpoint_blobs b
 WHERE b.thread_id = %(t)s AND NOT EXISTS (
    SELECT 1 FROM kept c
     WHERE c.checkpoint_ns = b.checkpoint_ns
       AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)
"""


# A checkpoint and its new blobs, as the stock saver's two upserts write them
# (UPSERT_CHECKPOINT_BLOBS_SQL, a row per blob, then UPSERT_CHECKPOINTS_SQL), in
# one statement: the blobs come as columns of arrays, theirs in binary (`%b`: in
# text, psycopg escapes every blob into the array's literal, 2.5x the CPU).
_PUT_CTES = """
WITH blobs AS (
    INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
    SELECT %(t)s, %(ns)s, b.channel, b.version, b.type, b.blob
      FROM unnest(%(channels)s::text[], %(versions)s::text[], %(types)s::text[],
                  %(blobs)b::bytea[]) AS b(channel, version, type, blob)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
), put AS (
    INSERT INTO checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)
    VALUES (%(t)s, %(ns)s, %(id)s, %(parent)s, %(checkpoint)s, %(metadata)s)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)
    DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
)"""
_PUT_SQL = _PUT_CTES + "\nSELECT 1"

# The same, for a saver that keeps the latest checkpoint alone (the default,
# `checkpoints_keep` 1): the statement also drops what `_PRUNE_SQL` would after
# the turn, the namespace's older checkpoints, their writes, and the blobs the
# new checkpoint does not name. Its DELETEs see the tables as they were before
# it, so never the new checkpoint or its new blobs (and a checkpoint put again
# is kept by its id).
_PUT_KEEPING_IT_ALONE_SQL = (
    _PUT_CTES
    + """, older AS (
    DELETE FROM checkpoints
     WHERE thread_id = %(t)s AND checkpoint_ns = %(ns)s AND checkpoint_id <> %(id)s
), writes AS (
    DELETE FROM checkpoint_writes
     WHERE thread_id = %(t)s AND checkpoint_ns = %(ns)s AND checkpoint_id <> %(id)s
)
DELETE FROM checkpoint_blobs b
 WHERE b.thread_id = %(t)s AND b.checkpoint_ns = %(ns)s
   AND b.version IS DISTINCT FROM (%(checkpoint)s::jsonb -> 'channel_versions' ->> b.channel)
"""
)


class RunSaver(AsyncPostgresSaver):
    """The checkpointer of one run. Two changes to AsyncPostgresSaver:

    - It can begin reading the thread's latest checkpoint before the run asks
      for it (`read_ahead`). A turn's first two waits are the journal's INSERT
      of the question and this read; they do not depend on each other, so
      run_turn starts both at once. The run holds the thread's lock, so nothing
      writes the checkpoint between the read and the graph's use of it.
    - It (de)serialises on the event loop. The stock saver hands each read's
      pending writes and each write's blobs to a worker thread and back; a
      Threadline checkpoint is a bounded window, less work than the two
      hand-offs (0.35-0.5 ms a turn, measured side by side). `aput` and
      `_load_checkpoint_tuple` are the library's (langgraph-checkpoint-postgres
      3.2) with that change; `aput` also writes the checkpoint and its blobs in
      one statement (`_PUT_SQL`) where the library sends one per blob and one
      for the checkpoint, the same rows; a run's saver also prunes the thread
      in that statement when it keeps one checkpoint (`keep_latest_alone`).
    """

    def __init__(self, pool: Pool, *, keep_latest_alone: bool = False) -> None:
        super().__init__(pool)
        self._put_sql = _PUT_KEEPING_IT_ALONE_SQL if keep_latest_alone else _PUT_SQL
        self._ahead: tuple[str, asyncio.Task[CheckpointTuple | None]] | None = None

    def read_ahead(self, thread_id: str) -> asyncio.Task[CheckpointTuple | None]:
        """Begin reading `thread_id`'s latest checkpoint; the run's first
        `aget_tuple` of it takes the result."""
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.discard_read_ahead()
        reading = asyncio.ensure_future(super().aget_tuple(config))
        self._ahead = (thread_id, reading)
        return reading

    def discard_read_ahead(self) -> None:
        """Drop a read begun and never taken (the run ended before the graph)."""
        if self._ahead is not None:
            _, reading = self._ahead
            self._ahead = None
            reading.cancel()
            reading.add_done_callback(retrieved)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        ahead, self._ahead = self._ahead, None
        wanted = config["configurable"]
        if (
            ahead is not None
            and ahead[0] == wanted["thread_id"]
            and not wanted.get("checkpoint_ns")
            and get_checkpoint_id(config) is None
        ):
            return await ahead[1]
        if ahead is not None:
            self._ahead = ahead  # not the read begun ahead: leave it for its turn
        return await super().aget_tuple(config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"].copy()
        thread_id = configurable.pop("thread_id")
        checkpoint_ns = configurable.pop("checkpoint_ns")
        checkpoint_id = configurable.pop("checkpoint_id", None)
        copy = checkpoint.copy()
        copy["channel_values"] = copy["channel_values"].copy()
        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        # Primitive values stay inline in the checkpoint row; the rest go to blobs.
        blob_values = {}
        for key, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blob_values[key] = copy["channel_values"].pop(key)
                copy["channel_values"][key] = True
            elif value is None or isinstance(value, (str, int, float, bool)):
                pass
            else:
                blob_values[key] = copy["channel_values"].pop(key)
        # The new blobs as columns (the stock saver writes a row per blob, then the
        # checkpoint): one statement, so one round trip and one transaction.
        blobs = [
            (k, str(v), *self.serde.dumps_typed(blob_values[k]))
            for k, v in new_versions.items()
            if k in blob_values
        ]
        async with self._cursor() as cur:
            await cur.execute(
                self._put_sql,
                {
                    "t": thread_id,
                    "ns": checkpoint_ns,
                    "channels": [blob[0] for blob in blobs],
                    "versions": [blob[1] for blob in blobs],
                    "types": [blob[2] for blob in blobs],
                    "blobs": [blob[3] for blob in blobs],
                    "id": checkpoint["id"],
                    "parent": checkpoint_id,
                    "checkpoint": Jsonb(copy),
                    "metadata": Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
                },
            )
        return next_config

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        thread_id, checkpoint_ns = value["thread_id"], value["checkpoint_ns"]
        parent = value["parent_checkpoint_id"]
        stored = value["checkpoint"]
        channel_values = {
            **(stored.get("channel_values") or {}),
            **self._load_blobs(value["channel_values"]),
        }
        return CheckpointTuple(
            {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": value["checkpoint_id"],
                }
            },
            cast(Checkpoint, {**stored, "channel_values": channel_values}),
            value["metadata"],
            (
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": checkpoint_ns,
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            self._load_writes(value["pending_writes"]),
        )


def new_saver(pool: Pool, *, keep_latest_alone: bool = False) -> RunSaver:
    """A saver for one run; with `keep_latest_alone`, each checkpoint it puts
    replaces the thread's older ones (`_PUT_KEEPING_IT_ALONE_SQL`).

    AsyncPostgresSaver serialises every call behind one asyncio.Lock
    (langgraph issue 7259), so concurrent runs each get their own, all on the
    process's one pool.
    """
    return RunSaver(pool, keep_latest_alone=keep_latest_alone)


async def prune_thread(pool: Pool, thread_id: str, *, keep: int = 1) -> None:
    """Drop all but the newest `keep` checkpoints of a thread.

    Like the saver's `aprune(strategy="keep_latest")` for keep=1, in one
    statement (`_PRUNE_SQL`); it runs after each turn of a server that keeps
    more than one (with one, each put prunes: `keep_latest_alone`). A checkpoint committed
    meanwhile is never touched: only older ones go, and a blob goes only when
    no remaining checkpoint refers to it.
    """
    async with pool.connection() as conn:
        await conn.execute(_PRUNE_SQL, {"t": thread_id, "keep": keep})


async def delete_thread(pool: Pool, thread_id: str) -> None:
    """Remove every checkpoint, write and blob of a thread."""
    await new_saver(pool).adelete_thread(thread_id)
