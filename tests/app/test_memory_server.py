"""Long-term memory through the real server: recall across threads, anonymous
and incognito sessions, forgetting, isolation, and a crash before the save."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.support.api import memories, new_session, register, wait_for_memories
from tests.support.identities import anonymous_session
from tests.support.server import ServerProcess
from tests.support.ws import Sockets


async def say(
    ws: Sockets, server: ServerProcess, session_id: str, headers: dict, text: str
) -> list[dict]:
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    await sock.ask(text)
    frames = await sock.until("done")
    await sock.close()
    return frames


def answer(frames: list[dict]) -> str:
    return next(f["message"]["content"] for f in frames if f["type"] == "message")


async def test_recall_across_threads(server: ServerProcess, ws: Sockets) -> None:
    me = register(server)
    first = new_session(server, me, title="About me")
    await say(ws, server, first["id"], me, "my name is Ada Lovelace and I live in Tromsø")
    saved = wait_for_memories(server, me, count=2, kind="fact")
    assert {m["source_session_id"] for m in saved} == {first["id"]}
    second = new_session(server, me)
    frames = await say(ws, server, second["id"], me, "what is my name?")
    assert "Ada Lovelace" in answer(frames)
    loaded = next(f for f in frames if f["type"] == "memory_loaded")
    by_content = {m["content"]: m for m in loaded["memories"]}
    assert by_content["User said: my name is Ada Lovelace"]["source_session_id"] == first["id"]
    kinds = [f["type"] for f in frames]
    assert kinds.index("memory_loaded") < kinds.index("token")
    assert "Tromsø" in answer(await say(ws, server, second["id"], me, "where do I live?"))


async def test_anonymous_sessions_learn_nothing(
    server: ServerProcess, server_database: str, ws: Sockets
) -> None:
    session_id, headers = await anonymous_session(server_database)
    for text in ["my name is Mallory", "I live in Paris", "I prefer tea", "what is my name?"]:
        frames = await say(ws, server, session_id, headers, text)
        assert not [f for f in frames if f["type"] == "memory_loaded"]
    other_id, other = await anonymous_session(server_database)
    assert "Mallory" not in answer(await say(ws, server, other_id, other, "what is my name?"))
    assert httpx.get(f"{server.url}/api/memories", headers=headers, timeout=10).status_code == 401
    with psycopg.connect(server_database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM memories WHERE source_session_id = %s", (session_id,)
        ).fetchone()
    assert row == (0,)


async def test_incognito_session_neither_reads_nor_writes(
    server: ServerProcess, ws: Sockets
) -> None:
    me = register(server)
    known = new_session(server, me)
    await say(ws, server, known["id"], me, "my name is Grace Hopper")
    wait_for_memories(server, me, count=2)
    incognito = new_session(server, me, memory=False)
    assert incognito["memory"] is False
    frames = await say(ws, server, incognito["id"], me, "what is my name? my name is Nobody")
    assert not [f for f in frames if f["type"] == "memory_loaded"]
    assert "Grace" not in answer(frames)
    # A remembering thread's turn, asked after the incognito one was done: once
    # its memory is saved, a save of the incognito turn (which would have begun
    # at its own `done`) would be there too.
    facts = memories(server, me, kind="fact")
    await say(ws, server, known["id"], me, "I live in Reykjavik")
    after = wait_for_memories(server, me, count=len(facts) + 1, kind="fact")
    assert any("Reykjavik" in m["content"] for m in after)
    everything = memories(server, me)
    assert not [m for m in everything if m["source_session_id"] == incognito["id"]]
    assert not [m for m in everything if "Nobody" in m["content"]]


async def test_forgotten_memories_are_never_loaded_again(
    server: ServerProcess, ws: Sockets
) -> None:
    me = register(server)
    first = new_session(server, me)
    await say(ws, server, first["id"], me, "my name is Alan Turing")
    name = next(m for m in wait_for_memories(server, me, kind="fact") if "Alan" in m["content"])
    assert (
        httpx.delete(f"{server.url}/api/memories/{name['id']}", headers=me, timeout=10).status_code
        == 204
    )
    second = new_session(server, me)
    frames = await say(ws, server, second["id"], me, "what is my name?")
    assert all(
        m["id"] != name["id"] for f in frames if f["type"] == "memory_loaded" for m in f["memories"]
    )

    third = new_session(server, me)
    await say(ws, server, third["id"], me, "I live in Wilmslow")
    wait_for_memories(server, me, kind="fact")
    gone = httpx.delete(
        f"{server.url}/api/sessions/{third['id']}?forget=true", headers=me, timeout=10
    )
    assert gone.status_code == 204
    assert all(m["source_session_id"] != third["id"] for m in memories(server, me))
    fourth = new_session(server, me)
    assert "Wilmslow" not in answer(await say(ws, server, fourth["id"], me, "where do I live?"))


def test_memory_api_isolation(server: ServerProcess) -> None:
    alice, bob = register(server), register(server)
    made = httpx.post(
        f"{server.url}/api/memories",
        json={"kind": "preference", "key": "editor", "content": "editor: vim"},
        headers=alice,
        timeout=10,
    )
    assert made.status_code == 201, made.text
    memory_id = made.json()["id"]
    missing = "00000000-0000-0000-0000-000000000000"
    for method, body in (("GET", None), ("PATCH", {"content": "editor: emacs"}), ("DELETE", None)):
        for target in (memory_id, missing):
            reply = httpx.request(
                method, f"{server.url}/api/memories/{target}", json=body, headers=bob, timeout=10
            )
            assert (reply.status_code, reply.json()) == (
                404,
                {"error": {"code": "not_found", "message": "memory not found"}},
            )
        assert (
            httpx.request(
                method, f"{server.url}/api/memories/{memory_id}", json=body, timeout=10
            ).status_code
            == 401
        )
    assert memories(server, bob) == []
    assert [m["content"] for m in memories(server, alice)] == ["editor: vim"]
    edited = httpx.patch(
        f"{server.url}/api/memories/{memory_id}",
        json={"content": "editor: helix"},
        headers=alice,
        timeout=10,
    )
    assert edited.json()["content"] == "editor: helix"


@pytest.mark.parametrize(
    "body",
    [{"content": ""}, {"content": "a\u0000b"}, {"kind": "dream", "content": "x"}, {"content": 5}],
)
def test_bad_memories_are_refused(server: ServerProcess, body: dict) -> None:
    me = register(server)
    reply = httpx.post(f"{server.url}/api/memories", json=body, headers=me, timeout=10)
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_input"
    assert memories(server, me) == []


async def test_save_after_done_survives_sigkill(
    slow_save: ServerProcess, server_database: str, ws: Sockets
) -> None:
    me = register(slow_save)
    session = new_session(slow_save, me)
    await say(ws, slow_save, session["id"], me, "my name is Hedy Lamarr")
    slow_save.kill()  # after done, before the save
    with psycopg.connect(server_database) as conn:
        owed = conn.execute(
            "SELECT count(*) FROM memories WHERE source_session_id = %s", (session["id"],)
        ).fetchone()
    assert owed == (0,)  # nothing was saved before the kill
    slow_save.start()  # the owed save is picked up at start
    saved = wait_for_memories(slow_save, me, kind="fact")
    assert [m["content"] for m in saved] == ["User said: my name is Hedy Lamarr"]
    assert len(memories(slow_save, me, kind="summary")) == 1


async def test_what_was_said_a_moment_ago_is_known_in_the_next_thread_and_listed(
    slow_save: ServerProcess, ws: Sockets
) -> None:
    # The save after `done` held back, as a save that waits out a busy
    # thread's gap is: a new thread's question and the memory list right
    # after the answer finish it first instead of reading around it.
    me = register(slow_save)
    told = new_session(slow_save, me)
    await say(ws, slow_save, told["id"], me, "My dog is called Biscuit.")
    listed = [m["content"] for m in memories(slow_save, me, kind="fact")]
    assert listed == ["User said: My dog is called Biscuit"]
    await say(ws, slow_save, told["id"], me, "I'm allergic to shellfish.")
    asked = new_session(slow_save, me)
    frames = await say(ws, slow_save, asked["id"], me, "What am I allergic to?")
    assert "shellfish" in answer(frames), answer(frames)
    # A message read with the one before it ("she" is the sister) is waited for too.
    await say(ws, slow_save, told["id"], me, "My sister is called Mia.")
    frames = await say(ws, slow_save, asked["id"], me, "Who is Mia?")  # that save is done
    assert "My sister is called Mia" in answer(frames), answer(frames)
    await say(ws, slow_save, told["id"], me, "She is a pilot.")
    asked = new_session(slow_save, me)
    frames = await say(ws, slow_save, asked["id"], me, "What does my sister do?")
    assert "pilot" in answer(frames), answer(frames)


async def test_claim_keeps_the_thread_and_seeds_memory(server: ServerProcess, ws: Sockets) -> None:
    visitor = httpx.post(f"{server.url}/api/sessions", json={}, timeout=10).json()
    anon = {"X-Anon-Token": visitor["anon_token"]}
    await say(ws, server, visitor["id"], anon, "my name is Claire Voyant")
    me = register(server)
    stranger = register(server)
    url = f"{server.url}/api/sessions/{visitor['id']}/claim"
    assert httpx.post(url, headers=anon, timeout=10).status_code == 401  # log in first
    assert httpx.post(url, headers=stranger, timeout=10).status_code == 404  # not their thread
    other_anon = {"X-Anon-Token": "someone-else", **me}
    assert httpx.post(url, headers=other_anon, timeout=10).status_code == 404
    claimed = httpx.post(url, headers={**anon, **me}, timeout=10)
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["anonymous"], claimed.json()["memory"]) == (False, True)
    assert claimed.json()["expires_at"] is None
    listed = httpx.get(f"{server.url}/api/sessions", headers=me, timeout=10).json()["sessions"]
    assert [s["id"] for s in listed] == [visitor["id"]]
    # The claim ended the anonymous identity (it held no other thread): it proves nobody.
    assert (
        httpx.get(
            f"{server.url}/api/sessions/{visitor['id']}", headers=anon, timeout=10
        ).status_code
        == 401
    )
    seeded = wait_for_memories(server, me, kind="fact")
    assert [(m["content"], m["source_session_id"]) for m in seeded] == [
        ("User said: my name is Claire Voyant", visitor["id"])
    ]
    fresh = new_session(server, me)
    assert "Claire Voyant" in answer(await say(ws, server, fresh["id"], me, "what is my name?"))
