"""The WebSocket protocol against a real uvicorn and real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from graph.nodes import answer_id_for
from tests.support.identities import anonymous_session, user_session
from tests.support.server import ServerProcess
from tests.support.ws import LONG_QUESTION, Sockets


def messages_of(server: ServerProcess, session_id: str, headers: dict[str, str]) -> list[dict]:
    reply = httpx.get(
        f"{server.url}/api/sessions/{session_id}/messages?limit=200", headers=headers, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["messages"]


@pytest.mark.parametrize("who", ["anonymous", "user"])
async def test_full_frame_sequence(
    ws: Sockets, server: ServerProcess, server_database: str, who: str
) -> None:
    make = anonymous_session if who == "anonymous" else user_session
    session_id, headers = await make(server_database)
    sock = await ws.open(server, session_id, headers)
    first = await sock.recv()
    assert first["type"] == "session" and first["session"]["id"] == session_id
    assert first["messages"] == []
    query_id = await sock.ask("hello, my name is Ada")
    frames = await sock.until("done")
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "ack"  # before the graph runs
    ack = next(f for f in frames if f["type"] == "ack")
    assert (ack["id"], ack["seq"]) == (query_id, 1)
    assert kinds.index("ack") < kinds.index("token") < kinds.index("message") < kinds.index("done")
    nodes = [f["node"] for f in frames if f["type"] == "progress" and f["status"] == "finished"]
    assert nodes == ["initialize", "planning", "execution", "response"]
    message = next(f for f in frames if f["type"] == "message")["message"]
    streamed = "".join(f["content"] for f in frames if f["type"] == "token")
    assert message["content"] == streamed and message["seq"] == 2
    assert message["id"] == answer_id_for(query_id)
    assert {f["run_id"] for f in frames if f["type"] in ("token", "done")} == {frames[-1]["run_id"]}
    await sock.send({"type": "ping"})
    assert (await sock.recv())["type"] == "pong"


async def test_query_right_after_done_runs(
    ws: Sockets, server: ServerProcess, server_database: str
) -> None:
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    for i in range(5):
        await sock.ask(f"question {i}")
        frames = await sock.until("done")
        assert not [f for f in frames if f["type"] == "error"], frames
    assert len(messages_of(server, session_id, headers)) == 10


async def test_resent_query_is_replayed_not_rerun(
    ws: Sockets, server: ServerProcess, server_database: str
) -> None:
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    query_id = await sock.ask("only once")
    original = next(f for f in await sock.until("done") if f["type"] == "message")
    sock = await ws.open(server, session_id, headers)  # a reconnect
    await sock.recv()
    await sock.ask("only once", query_id)
    frames = await sock.until("done")
    assert [f["type"] for f in frames] == ["ack", "message", "done"]
    assert all(f.get("replayed") for f in frames)
    assert frames[1]["message"] == original["message"]
    assert [m["id"] for m in messages_of(server, session_id, headers)] == [
        query_id,
        answer_id_for(query_id),
    ]


async def test_message_id_of_another_session_is_refused(
    ws: Sockets, server: ServerProcess, server_database: str
) -> None:
    first, headers = await anonymous_session(server_database)
    second, other_headers = await anonymous_session(server_database)
    sock = await ws.open(server, first, headers)
    await sock.recv()
    query_id = await sock.ask("mine")
    await sock.until("done")
    other = await ws.open(server, second, other_headers)
    await other.recv()
    await other.ask("stealing the id", query_id)
    error = await other.recv()
    assert (error["type"], error["code"], error["id"]) == ("error", "message_id_conflict", query_id)
    assert messages_of(server, second, other_headers) == []
    assert messages_of(server, first, headers)[0]["content"] == "mine"


async def test_busy_while_a_turn_runs(
    ws: Sockets, fresh_server: ServerProcess, server_database: str
) -> None:
    fresh_server.start()
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    await sock.ask("a slow answer please")
    await sock.until("token")
    second = await sock.ask("double text")
    frames = await sock.until("done")
    busy = [f for f in frames if f["type"] == "error"]
    assert busy and busy[0]["code"] == "busy" and busy[0]["id"] == second
    stored = messages_of(fresh_server, session_id, headers)
    assert [m["role"] for m in stored] == ["user", "assistant"]


async def test_cancel_journals_the_partial_answer(
    ws: Sockets, fresh_server: ServerProcess, server_database: str
) -> None:
    fresh_server.start()
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    await sock.ask("tell me a long story")
    await sock.until("token")
    await sock.send({"type": "cancel"})
    frames = await sock.until("done")
    message = next(f for f in frames if f["type"] == "message")["message"]
    assert message["cancelled"] is True
    full = messages_of(fresh_server, session_id, headers)[-1]
    assert full["content"] == message["content"] and full["cancelled"] is True
    assert len(message["content"]) < 200  # stopped well before the full reply
    await sock.ask("are you still there?")  # the thread is free again
    assert [f for f in await sock.until("done") if f["type"] == "error"] == []


async def test_disconnect_mid_answer_then_resume(
    ws: Sockets, fresh_server: ServerProcess, server_database: str
) -> None:
    fresh_server.start()
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    query_id = await sock.ask("answer even if I leave")
    ack = (await sock.until("ack"))[-1]
    await sock.until("token")
    await sock.close()  # the browser goes away mid-answer
    sock = await ws.open(fresh_server, session_id, headers)
    await sock.recv()
    await sock.send({"type": "resume", "after_seq": ack["seq"]})
    frames = await sock.until("resumed")
    if frames[-1]["active_run"]:
        frames += await sock.until("done")
    answers = [f["message"] for f in frames if f["type"] == "message"]
    assert answers and answers[-1]["id"] == answer_id_for(query_id)
    assert "offline model" in answers[-1]["content"] and answers[-1]["has_error"] is False
    stored = messages_of(fresh_server, session_id, headers)
    assert [m["id"] for m in stored] == [query_id, answer_id_for(query_id)]


async def test_two_sockets_on_one_session_see_the_same_events(
    ws: Sockets, server: ServerProcess, server_database: str
) -> None:
    session_id, headers = await anonymous_session(server_database)
    tab_a = await ws.open(server, session_id, headers)
    tab_b = await ws.open(server, session_id, headers)
    await tab_a.recv()
    await tab_b.recv()
    query_id = await tab_a.ask("seen in both tabs")
    frames_a, frames_b = await asyncio.gather(tab_a.until("done"), tab_b.until("done"))
    assert frames_a == frames_b
    ack = next(f for f in frames_b if f["type"] == "ack")
    assert ack["message"]["content"] == "seen in both tabs" and ack["id"] == query_id


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "invalid_frame"),
        ('{"type": "teleport"}', "invalid_frame"),
        ('{"type": "query"}', "invalid_frame"),
        ('{"type": "query", "id": "not-a-uuid", "content": "x"}', "invalid_frame"),
        ('{"type": "query", "id": 5, "content": "x"}', "invalid_frame"),
        ('{"type": "resume", "after_seq": "x"}', "invalid_frame"),
        ('{"type": "resume", "after_seq": -1}', "invalid_frame"),
        ("[1, 2, 3]", "invalid_frame"),
        (f'{{"type": "query", "id": "{uuid.uuid4()}", "content": ""}}', "invalid_input"),
        (f'{{"type": "query", "id": "{uuid.uuid4()}", "content": "a\\u0000b"}}', "invalid_input"),
        (
            f'{{"type": "query", "id": "{uuid.uuid4()}", "content": "{"x" * 40000}"}}',
            "invalid_input",
        ),
        ("x" * 300_000, "frame_too_large"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(
    ws: Sockets, server: ServerProcess, server_database: str, frame: str, code: str
) -> None:
    session_id, headers = await anonymous_session(server_database)
    sock = await ws.open(server, session_id, headers)
    await sock.recv()
    await sock.send(frame)
    error = await sock.recv()
    assert (error["type"], error["code"]) == ("error", code)
    await sock.send({"type": "ping"})
    assert (await sock.recv())["type"] == "pong"
    assert messages_of(server, session_id, headers) == []


async def close_code(
    ws: Sockets, server: ServerProcess, session_id: str, headers: dict[str, str]
) -> int:
    try:
        sock = await ws.open(server, session_id, headers)
    except InvalidStatus as exc:  # pragma: no cover - shows a handshake refusal plainly
        raise AssertionError(f"handshake refused: {exc}") from exc
    with pytest.raises(ConnectionClosed) as closed:
        await sock.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_close_codes(ws: Sockets, server: ServerProcess, server_database: str) -> None:
    session_id, headers = await anonymous_session(server_database)
    _, stranger = await anonymous_session(server_database)
    _, user = await user_session(server_database)
    assert await close_code(ws, server, session_id, {}) == 4401
    assert await close_code(ws, server, session_id, {"Authorization": "Bearer forged"}) == 4401
    assert await close_code(ws, server, session_id, stranger) == 4404
    assert await close_code(ws, server, session_id, user) == 4404
    assert await close_code(ws, server, str(uuid.uuid4()), headers) == 4404
    assert await close_code(ws, server, "not-a-uuid", headers) == 4404
    foreign = {**headers, "Origin": "https://evil.example"}
    assert await close_code(ws, server, session_id, foreign) == 4403
    own = {**headers, "Origin": server.url}
    sock = await ws.open(server, session_id, own)
    assert (await sock.recv())["type"] == "session"


def tokens_continue(so_far: dict, frames: list[dict], answer: str) -> None:
    """The answer so far and the token frames after it are the whole answer, each
    frame starting (`at`) where the text before it ends."""
    text = so_far["content"]
    for frame in frames:
        if frame["type"] == "token":
            assert frame["run_id"] == so_far["run_id"] and frame["at"] == len(text), frame
            text += frame["content"]
    assert text == answer


async def test_a_socket_opened_mid_answer_gets_the_answer_from_its_start(
    ws: Sockets, fresh_server: ServerProcess, server_database: str
) -> None:
    server = fresh_server
    server.env["THREADLINE_OFFLINE_TOKEN_DELAY_MS"] = "100"  # an answer of about 6 s
    server.start()
    session_id, headers = await anonymous_session(server_database)
    first = await ws.open(server, session_id, headers)
    assert "answer_so_far" not in await first.recv()
    await first.ask(LONG_QUESTION)
    seen = [f for f in await first.until("token") if f["type"] == "token"]
    while sum(len(f["content"]) for f in seen) < 20:  # some words streamed already
        frame = await first.recv()
        seen += [frame] if frame["type"] == "token" else []
    assert seen[0]["at"] == 0
    late = await ws.open(server, session_id, headers)
    opened = await late.recv()
    assert opened["type"] == "session" and opened["active_run"] is True
    so_far = opened["answer_so_far"]
    assert len(so_far["content"]) >= 20 and so_far["run_id"] == seen[0]["run_id"]
    frames = await late.until("done")
    answer = next(f["message"] for f in frames if f["type"] == "message")
    tokens_continue(so_far, frames, answer["content"])
    everything = seen + await first.until("done")
    tokens_continue({"run_id": so_far["run_id"], "content": ""}, everything, answer["content"])
