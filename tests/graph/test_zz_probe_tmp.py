import uuid, pytest
from graph.turn import read_window
from memory.errors import InvalidInput, SessionNotFound
from tests.graph.conftest import Harness

@pytest.mark.parametrize("durability", ["exit", "sync", "async"])
async def test_probe(harness: Harness, durability):
    harness.durability = durability
    sid = await harness.new_session()
    with pytest.raises(InvalidInput):
        await harness.ask(sid, "a\x00b")
    async with harness.db.pool.connection() as conn:
        rows = await (await conn.execute("SELECT checkpoint_id, metadata FROM checkpoints WHERE thread_id=%s", (sid,))).fetchall()
        w = await (await conn.execute("SELECT channel, type, length(blob) FROM checkpoint_writes WHERE thread_id=%s", (sid,))).fetchall()
        b = await (await conn.execute("SELECT channel FROM checkpoint_blobs WHERE thread_id=%s", (sid,))).fetchall()
    print(durability, rows, w, b)
    st = await read_window(harness.graph, harness.db.pool, sid)
    print("state", st)
    missing = str(uuid.uuid4())
    with pytest.raises(SessionNotFound):
        await harness.ask(missing, "hi")
    async with harness.db.pool.connection() as conn:
        n = await (await conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id=%s", (missing,))).fetchone()
    print("orphan", n)
