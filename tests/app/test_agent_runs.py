"""Agent Server API runs that outlive their request: joining a run's stream after
`Last-Event-ID` (a dropped connection, a server SIGKILL) and double texting
(`reject`, `enqueue`, `interrupt`, `rollback`), with the real `langgraph-sdk`
Python client against a real uvicorn of the test's own (`fresh_server`), whose
offline model streams slowly enough to be caught mid-answer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError

from app.routes.agent_stream import with_heartbeats
from tests.support.api import register
from tests.support.server import ServerProcess

# The offline model says the question back, a word a token: at 60 ms a token this
# answer streams for seconds, long enough to act in the middle of it.
LONG = "please tell me a long story, " + " ".join(f"word{n}" for n in range(40))


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


@pytest.fixture
def slow_api(fresh_server: ServerProcess) -> Iterator[ServerProcess]:
    """A server of the test's own whose answers take several seconds."""
    fresh_server.env["THREADLINE_OFFLINE_TOKEN_DELAY_MS"] = "60"
    fresh_server.start()
    yield fresh_server


def sse_events(reply: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of an SSE response as {"event", "id", "data"}, as they arrive."""
    event: dict[str, Any] = {}
    for line in reply.iter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(": ")
            event[field] = json.loads(value) if field == "data" else value


def chunks_of(events: list[Any]) -> str:
    """The answer's streamed text: its AIMessageChunks, concatenated."""
    return "".join(
        data[0]["content"]
        for event, data in events
        if event == "messages" and data[0]["type"] == "AIMessageChunk"
    )


def journal(database: str, thread_id: str) -> list[tuple[str, str, bool]]:
    """The thread's messages as (id, role, cancelled), oldest first."""
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT id, role, coalesce((metadata->>'cancelled')::boolean, false)"
            " FROM chat_messages WHERE session_id = %s ORDER BY seq",
            (thread_id,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def run_reply(
    server: ServerProcess, headers: dict[str, str], thread_id: str, run: str, method: str = "GET"
) -> httpx.Response:
    """The server's reply to `method` on `/threads/{thread_id}/runs/{run}`."""
    url = f"{server.url}/threads/{thread_id}/runs/{run}"
    return httpx.request(method, url, headers=headers, timeout=10)


def first_events(
    server: ServerProcess, headers: dict[str, str], thread_id: str, text: str, chunks: int
) -> tuple[list[Any], str, str]:
    """Start a streamed run and read it until `chunks` answer chunks came, then
    drop the connection; returns the events read, the run id and the last event id."""
    seen: list[Any] = []
    last_id = ""
    body = {"assistant_id": "threadline", "input": human(text), "stream_mode": ["messages-tuple"]}
    url = f"{server.url}/threads/{thread_id}/runs/stream"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as reply:
        assert reply.status_code == 200, reply.read()
        run_id = reply.headers["Content-Location"].rsplit("/", 1)[1]
        for event in sse_events(reply):
            seen.append((event["event"], event["data"]))
            last_id = event.get("id", last_id)
            if chunks_of(seen).count(" ") >= chunks:
                break
    return seen, run_id, last_id


async def test_join_stream_after_a_dropped_connection_misses_nothing(
    slow_api: ServerProcess,
) -> None:
    headers = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:
        thread_id = (await client.threads.create())["thread_id"]
        seen, run_id, last_id = first_events(slow_api, headers, thread_id, LONG, chunks=5)
        assert last_id, "the stream's events carry ids"
        rest = [
            (part.event, part.data)
            async for part in client.runs.join_stream(
                thread_id, run_id, stream_mode="messages-tuple", last_event_id=last_id
            )
        ]
        assert rest[-1][0] == "end"
        answers = [d[0] for e, d in rest if e == "messages" and d[0]["type"] == "ai"]
        assert len(answers) == 1  # the journaled answer, once
        # What was read before the drop and what the join sent are the answer, exactly.
        assert chunks_of(seen) + chunks_of(rest) == answers[0]["content"]
        assert (await client.runs.get(thread_id, run_id))["status"] == "success"

        # Joined from the start once it is over: the whole run again, from its log.
        replay = [
            (p.event, p.data)
            async for p in client.runs.join_stream(thread_id, run_id, stream_mode="messages")
        ]
        assert chunks_of(replay) == answers[0]["content"]


async def test_a_run_cut_off_by_sigkill_is_asked_again_and_joined_after_restart(
    slow_api: ServerProcess, server_database: str
) -> None:
    """The process dies mid-answer; after the restart the run is asked again (its
    turn reruns, attempt 2) and a client joining after its last event id reads
    the rest: one question, one answer in the journal."""
    headers = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:
        thread_id = (await client.threads.create())["thread_id"]
        _, run_id, last_id = first_events(slow_api, headers, thread_id, LONG, chunks=3)
        slow_api.kill()
        slow_api.start()
        rest = [
            (part.event, part.data)
            async for part in client.runs.join_stream(
                thread_id, run_id, stream_mode=["messages-tuple"], last_event_id=last_id
            )
        ]
        assert ("metadata", {"run_id": run_id, "attempt": 2}) in rest
        answers = [d[0] for e, d in rest if e == "messages" and d[0]["type"] == "ai"]
        assert len(answers) == 1 and "offline model" in answers[0]["content"]
        assert rest[-1][0] == "end"
        assert (await client.runs.get(thread_id, run_id))["status"] == "success"
    assert [(role, cancelled) for _, role, cancelled in journal(server_database, thread_id)] == [
        ("user", False),
        ("assistant", False),
    ]


async def test_double_texting_reject_enqueue_interrupt_rollback(
    slow_api: ServerProcess, server_database: str
) -> None:
    headers = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:
        # reject: a second run while one runs is refused, and nothing of it is kept.
        thread_id = (await client.threads.create())["thread_id"]
        first = await client.runs.create(thread_id, "threadline", input=human(LONG))
        with pytest.raises(ConflictError):
            await client.runs.create(
                thread_id, "threadline", input=human("hello"), multitask_strategy="reject"
            )
        await client.runs.join(thread_id, first["run_id"])
        assert [r for _, r, _ in journal(server_database, thread_id)] == ["user", "assistant"]

        # enqueue: the second waits (pending) and runs once the first is answered.
        thread_id = (await client.threads.create())["thread_id"]
        first = await client.runs.create(thread_id, "threadline", input=human(LONG))
        queued = await client.runs.create(
            thread_id,
            "threadline",
            input=human("my name is Ada"),
            multitask_strategy="enqueue",
            metadata={"source": "queue"},
        )
        assert queued["status"] == "pending"
        listed = await client.runs.list(thread_id)
        assert [(r["run_id"], r["status"]) for r in listed] == [
            (queued["run_id"], "pending"),
            (first["run_id"], "running"),
        ]
        # what each was asked with, while queued as once journaled
        assert [(r["multitask_strategy"], r["metadata"]) for r in listed] == [
            ("enqueue", {"source": "queue"}),
            ("reject", {}),
        ]
        values = await client.runs.join(thread_id, queued["run_id"])
        assert [m["type"] for m in values["messages"]] == ["human", "ai", "human", "ai"]
        assert values["messages"][2]["id"] == queued["run_id"]
        for run in (first, queued):
            assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
        done = await client.runs.get(thread_id, queued["run_id"])
        assert (done["multitask_strategy"], done["metadata"]) == ("enqueue", {"source": "queue"})

        # interrupt: the first stops (its partial answer kept), the second answers.
        thread_id = (await client.threads.create())["thread_id"]
        first = await client.runs.create(thread_id, "threadline", input=human(LONG))
        second = await client.runs.wait(
            thread_id, "threadline", input=human("hello"), multitask_strategy="interrupt"
        )
        assert isinstance(second, dict)
        assert (await client.runs.get(thread_id, first["run_id"]))["status"] == "interrupted"
        assert [(r, c) for _, r, c in journal(server_database, thread_id)] == [
            ("user", False),
            ("assistant", True),
            ("user", False),
            ("assistant", False),
        ]

        # rollback: the first stops and leaves nothing behind.
        thread_id = (await client.threads.create())["thread_id"]
        first = await client.runs.create(thread_id, "threadline", input=human(LONG))
        await client.runs.wait(
            thread_id, "threadline", input=human("hello"), multitask_strategy="rollback"
        )
        rows = journal(server_database, thread_id)
        assert [(r, c) for _, r, c in rows] == [("user", False), ("assistant", False)]
        assert first["run_id"] not in [i for i, _, _ in rows]
        assert run_reply(slow_api, headers, thread_id, first["run_id"]).status_code == 404


async def test_queued_runs_survive_a_restart_in_order(
    slow_api: ServerProcess, server_database: str
) -> None:
    headers = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:
        thread_id = (await client.threads.create())["thread_id"]
        first = await client.runs.create(thread_id, "threadline", input=human(LONG))
        queued = [
            await client.runs.create(
                thread_id, "threadline", input=human(text), multitask_strategy="enqueue"
            )
            for text in ("my name is Ada", "I live in Oslo")
        ]
        slow_api.kill()
        slow_api.start()
        for run in (first, *queued):
            await client.runs.join(thread_id, run["run_id"])
            assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
    rows = journal(server_database, thread_id)
    questions = [i for i, role, _ in rows if role == "user"]
    assert questions == [first["run_id"], *(r["run_id"] for r in queued)]
    assert [r for _, r, _ in rows] == ["user", "assistant"] * 3
    assert not any(cancelled for _, _, cancelled in rows)


async def test_a_quiet_stream_gets_heartbeats_without_losing_its_next_event() -> None:
    gate = asyncio.Event()

    async def frames() -> AsyncGenerator[int, None]:
        yield 1
        await gate.wait()  # quiet until the test has seen a heartbeat
        yield 2

    seen: list[int | None] = []
    async for item in with_heartbeats(frames(), every=0.01):
        seen.append(item)
        if item is None:
            gate.set()
    assert seen[0] == 1 and seen[-1] == 2 and None in seen


async def test_cancel_stops_only_its_own_run_and_rolls_back_on_request(
    slow_api: ServerProcess, server_database: str
) -> None:
    """A run's cancel touches that run alone: an earlier run that is over
    answers 409 and the running one goes on. `wait` answers once the turn
    stopped; `action=rollback` also takes the question and its partial answer
    out of the journal (the run is then gone: 404)."""
    headers = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:
        thread_id = (await client.threads.create())["thread_id"]
        over = await client.runs.wait(thread_id, "threadline", input=human("hello"))
        over_id = over["messages"][0]["id"]
        running = await client.runs.create(thread_id, "threadline", input=human(LONG))
        reply = httpx.post(
            f"{slow_api.url}/threads/{thread_id}/runs/{over_id}/cancel", headers=headers, timeout=10
        )
        assert reply.status_code == 409 and "error" in reply.json()
        await client.runs.join(thread_id, running["run_id"])
        assert (await client.runs.get(thread_id, running["run_id"]))["status"] == "success"

        stopped = await client.runs.create(thread_id, "threadline", input=human(LONG))
        await client.runs.cancel(thread_id, stopped["run_id"], wait=True)
        assert (await client.threads.get(thread_id))["status"] == "idle"
        assert (await client.runs.get(thread_id, stopped["run_id"]))["status"] == "interrupted"

        rolled = await client.runs.create(thread_id, "threadline", input=human(LONG))
        await client.runs.cancel(thread_id, rolled["run_id"], action="rollback")
        rows = journal(server_database, thread_id)
        assert rolled["run_id"] not in [i for i, _, _ in rows]
        assert [(r, c) for _, r, c in rows] == [
            *[("user", False), ("assistant", False)] * 2,
            ("user", False),
            ("assistant", True),
        ]
        assert run_reply(slow_api, headers, thread_id, rolled["run_id"]).status_code == 404
        missing = run_reply(slow_api, headers, thread_id, f"{uuid.uuid4()}/cancel", "POST")
        assert missing.status_code == 404


async def test_cancel_many_by_thread_by_status_and_across_threads(
    slow_api: ServerProcess,
) -> None:
    headers = register(slow_api)
    stranger = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:

        async def busy_thread() -> tuple[str, dict[str, Any], dict[str, Any]]:
            """A thread with a run answering and one queued behind it."""
            thread_id = (await client.threads.create())["thread_id"]
            running = await client.runs.create(thread_id, "threadline", input=human(LONG))
            queued = await client.runs.create(
                thread_id, "threadline", input=human("later"), multitask_strategy="enqueue"
            )
            return thread_id, running, queued

        async def statuses(thread_id: str, *runs: dict[str, Any]) -> list[str]:
            for run in runs:
                await client.runs.join(thread_id, run["run_id"])
            return [(await client.runs.get(thread_id, r["run_id"]))["status"] for r in runs]

        # Named runs of one thread.
        thread_id, running, queued = await busy_thread()
        await client.runs.cancel_many(thread_id=thread_id, run_ids=[queued["run_id"]])
        assert await statuses(thread_id, running, queued) == ["success", "interrupted"]

        # Every run of one thread.
        thread_id, running, queued = await busy_thread()
        await client.runs.cancel_many(thread_id=thread_id, status="all")
        assert await statuses(thread_id, running, queued) == ["interrupted", "interrupted"]

        # The queued runs of all the caller's threads; another user's are not touched.
        theirs_id = httpx.post(
            f"{slow_api.url}/threads", json={}, headers=stranger, timeout=10
        ).json()["thread_id"]
        async with get_client(url=slow_api.url, headers=stranger, api_key=None) as other:
            theirs = await other.runs.create(theirs_id, "threadline", input=human(LONG))
            their_queued = await other.runs.create(
                theirs_id, "threadline", input=human("later"), multitask_strategy="enqueue"
            )
            one, two = await busy_thread(), await busy_thread()
            await client.runs.cancel_many(status="pending")
            for thread_id, running, queued in (one, two):
                assert await statuses(thread_id, running, queued) == ["success", "interrupted"]
            for run in (theirs, their_queued):
                await other.runs.join(theirs_id, run["run_id"])
                assert (await other.runs.get(theirs_id, run["run_id"]))["status"] == "success"

        # The running turns of all the caller's threads.
        one, two = await busy_thread(), await busy_thread()
        await client.runs.cancel_many(status="running")
        for thread_id, running, queued in (one, two):
            assert await statuses(thread_id, running, queued) == ["interrupted", "success"]

    for body, status in [
        ({}, 422),
        ({"run_ids": [str(uuid.uuid4())]}, 422),
        ({"status": "done"}, 422),
        ({"thread_id": theirs_id, "status": "all"}, 404),
    ]:
        reply = httpx.post(f"{slow_api.url}/runs/cancel", json=body, headers=headers, timeout=10)
        assert reply.status_code == status, (body, reply.text)
        assert "error" in reply.json()


async def test_a_client_leaving_a_stream_with_on_disconnect_cancel_stops_its_run(
    slow_api: ServerProcess, server_database: str
) -> None:
    headers = register(slow_api)
    async with get_client(url=slow_api.url, headers=headers, api_key=None) as client:
        thread_id = (await client.threads.create())["thread_id"]
        body = {
            "assistant_id": "threadline",
            "input": human(LONG),
            "stream_mode": ["messages-tuple"],
            "on_disconnect": "cancel",
        }
        url = f"{slow_api.url}/threads/{thread_id}/runs/stream"
        with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as reply:
            run_id = reply.headers["Content-Location"].rsplit("/", 1)[1]
            for line in reply.iter_lines():
                if "AIMessageChunk" in line:
                    break  # left mid-answer
        await client.runs.join(thread_id, run_id)
        assert (await client.runs.get(thread_id, run_id))["status"] == "interrupted"
        assert [(r, c) for _, r, c in journal(server_database, thread_id)] == [
            ("user", False),
            ("assistant", True),
        ]


async def test_a_threads_stream_shows_every_run_as_it_happens(slow_api: ServerProcess) -> None:
    """`threads.join_stream` (GET /threads/{t}/stream): every run, whoever asks
    it, from `metadata` to `run_done`; `lifecycle` only those two; the stream
    ends when the thread is deleted. Its headers come once it is watching."""
    headers = register(slow_api)
    async with (
        get_client(url=slow_api.url, headers=headers, api_key=None) as client,
        httpx.AsyncClient(base_url=slow_api.url, headers=headers, timeout=30) as http,
    ):
        thread_id = (await client.threads.create())["thread_id"]
        url = f"/threads/{thread_id}/stream"

        async def read(reply: httpx.Response, runs: int) -> list[tuple[str, Any]]:
            seen: list[tuple[str, Any]] = []
            event = ""
            async for line in reply.aiter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    seen.append((event, json.loads(line[len("data: ") :])))
                    if sum(e == "run_done" for e, _ in seen) == runs:
                        break
            return seen

        async with (
            http.stream("GET", url) as everything,
            http.stream("GET", url, params={"stream_mode": "lifecycle"}) as lifecycle,
        ):
            assert everything.status_code == lifecycle.status_code == 200
            first = await client.runs.wait(thread_id, "threadline", input=human("hello one"))
            second = await client.runs.create(
                thread_id, "threadline", input=human("my name is Ada Lovelace")
            )
            seen = await asyncio.wait_for(read(everything, 2), 30)
            phases = [e for e, _ in await asyncio.wait_for(read(lifecycle, 2), 30)]
        kinds = [event for event, _ in seen]
        assert kinds[0] == "metadata" and kinds[-2:] == ["values", "run_done"]
        run_ids = [data["run_id"] for event, data in seen if event == "metadata"]
        assert run_ids == [first["messages"][0]["id"], second["run_id"]]
        assert [data for event, data in seen if event == "run_done"] == [
            {"run_id": run_id, "status": "success"} for run_id in run_ids
        ]
        chunks = [d[0]["content"] for e, d in seen if e == "messages" and d[0]["type"] != "ai"]
        assert "Ada Lovelace" in "".join(chunks)
        assert phases == ["metadata", "run_done", "metadata", "run_done"]

        async with http.stream("GET", url) as watching:
            await client.threads.delete(thread_id)
            assert await asyncio.wait_for(read(watching, 1), 30) == []
        other = (await client.threads.create())["thread_id"]
        stranger = register(slow_api)
        theirs = await http.get(f"/threads/{other}/stream", headers=stranger)
        assert theirs.status_code == 404
