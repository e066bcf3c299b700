"""Stateless runs of the Agent Server API (`runs.wait(None, ...)` and the rest),
driven by the real `langgraph-sdk` Python client against the shared real
server (`server`, tests/conftest.py): each runs on a thread of its own, deleted
once it is over unless kept, and what it taught stays in the user's memory."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from langgraph_sdk import get_client

from tests.support.api import register
from tests.support.server import ServerProcess
from tests.support.turns import wait_until


def client_for(server: ServerProcess, headers: dict[str, str]) -> Any:
    return get_client(url=server.url, headers=headers, api_key=None)


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


def thread_count(server: ServerProcess, headers: dict[str, str]) -> int:
    reply = httpx.post(f"{server.url}/threads/count", json={}, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    count: int = reply.json()
    return count


async def test_a_stateless_wait_leaves_no_thread_and_the_assistant_remembers(
    server: ServerProcess,
) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        values = await client.runs.wait(None, "threadline", input=human("My name is Zephyr Quill."))
        assert [m["type"] for m in values["messages"]] == ["human", "ai"]
        assert "Zephyr Quill" in values["messages"][1]["content"]
        assert await client.threads.search() == []  # gone once the answer is read

        # What it taught is the user's, as from any thread.
        thread = await client.threads.create()
        asked = await client.runs.wait(
            thread["thread_id"], "threadline", input=human("What's my name?")
        )
        assert "Zephyr Quill" in asked["messages"][-1]["content"]

        kept = await client.runs.wait(
            None, "threadline", input=human("hello there"), on_completion="keep"
        )
        found = await client.threads.search()
        assert len(found) == 2
        [other] = [t for t in found if t["thread_id"] != thread["thread_id"]]
        state = await client.threads.get_state(other["thread_id"])
        assert [m["content"] for m in state["values"]["messages"]] == [
            m["content"] for m in kept["messages"]
        ]


async def test_a_stateless_stream_streams_and_then_its_thread_goes(server: ServerProcess) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        events = [
            (part.event, part.data)
            async for part in client.runs.stream(
                None, "threadline", input=human("hello stream"), stream_mode=["values", "messages"]
            )
        ]
        kinds = [event for event, _ in events]
        assert kinds[0] == "metadata" and kinds[-2:] == ["values", "end"]
        final = events[-2][1]["messages"]
        streamed = "".join(
            data[0]["content"]
            for event, data in events
            if event == "messages" and data[0]["type"] == "AIMessageChunk"
        )
        assert [m["type"] for m in final] == ["human", "ai"] and final[1]["content"] == streamed
    await asyncio.to_thread(
        wait_until, lambda: thread_count(server, headers) == 0, "the stateless thread's deletion"
    )


async def test_stateless_background_runs_and_batches(server: ServerProcess) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        run = await client.runs.create(None, "threadline", input=human("in the background"))
        assert run["status"] in ("running", "success") and run["thread_id"]
        await asyncio.to_thread(
            wait_until, lambda: thread_count(server, headers) == 0, "the background run's deletion"
        )

        thread = await client.threads.create()
        batch = await client.runs.create_batch(
            [
                {"assistant_id": "threadline", "input": human("first of two")},
                {"assistant_id": "threadline", "input": human("second"), "on_completion": "keep"},
                {
                    "assistant_id": "threadline",
                    "input": human("on my thread"),
                    "thread_id": thread["thread_id"],
                },
            ]
        )
        assert len(batch) == 3 and batch[2]["thread_id"] == thread["thread_id"]
        joined = await client.runs.join(batch[1]["thread_id"], batch[1]["run_id"])
        assert joined["messages"][0]["content"] == "second"
        joined = await client.runs.join(thread["thread_id"], batch[2]["run_id"])
        assert joined["messages"][0]["content"] == "on my thread"
        # The first run's thread goes; the kept one and the caller's stay.
        await asyncio.to_thread(
            wait_until, lambda: thread_count(server, headers) == 2, "the batch's deletion"
        )


async def test_bad_stateless_runs_are_clear_4xx_and_leave_no_thread(server: ServerProcess) -> None:
    headers = register(server)
    other = register(server)
    theirs = httpx.post(f"{server.url}/threads", json={}, headers=other, timeout=10).json()
    ok = {"assistant_id": "threadline", "input": human("hi")}
    for path, body, status in [
        ("/runs/wait", {"assistant_id": "threadline", "input": {"messages": []}}, 422),
        ("/runs/stream", {"assistant_id": "nobody", "input": human("hi")}, 404),
        ("/runs", {**ok, "on_completion": "later"}, 422),
        ("/runs/wait", {**ok, "checkpoint_id": "seq-1"}, 422),
        ("/runs/wait", {**ok, "input": human("nul \u0000 inside")}, 422),
        ("/runs/batch", [ok, {"assistant_id": "threadline"}], 422),
        ("/runs/batch", [ok, {**ok, "thread_id": theirs["thread_id"]}], 404),
        ("/runs/batch", [ok] * 11, 422),
    ]:
        reply = httpx.post(
            f"{server.url}{path}",
            content=json.dumps(body),
            headers={**headers, "content-type": "application/json"},
            timeout=10,
        )
        assert reply.status_code == status, (path, reply.text)
        assert "error" in reply.json()
    assert thread_count(server, headers) == 0
    reply = httpx.post(f"{server.url}/runs/wait", json=ok, timeout=10)
    assert reply.status_code == 401


async def test_a_stateless_run_is_remembered_when_its_save_comes_late(
    slow_save: ServerProcess,
) -> None:
    """The save after `done` is held back 5 s here: the thread is deleted only
    once what the run taught is saved, so the next thread knows it at once."""
    headers = register(slow_save)
    async with client_for(slow_save, headers) as client:
        await client.runs.wait(None, "threadline", input=human("My dog is called Biscuit."))
        assert await client.threads.search() == []
        thread = await client.threads.create()
        asked = await client.runs.wait(
            thread["thread_id"], "threadline", input=human("What's my dog's name?")
        )
        assert "Biscuit" in asked["messages"][-1]["content"]


async def test_a_stateless_stream_left_early_runs_on_and_its_thread_goes(
    fresh_server: ServerProcess,
) -> None:
    """The client drops the stream mid-answer: the run goes on (`on_disconnect`
    is `continue`), and its thread is deleted once it is over, answer and all."""
    fresh_server.start()
    headers = register(fresh_server)
    body = {
        "assistant_id": "threadline",
        "input": human("tell me a story " + " ".join(f"w{n}" for n in range(30))),
        "stream_mode": ["messages-tuple"],
    }
    with httpx.stream(
        "POST", f"{fresh_server.url}/runs/stream", json=body, headers=headers, timeout=30
    ) as reply:
        assert reply.status_code == 200, reply.read()
        thread_id = reply.headers["Content-Location"].split("/")[2]
        for line in reply.iter_lines():
            if "AIMessageChunk" in line:
                break  # mid-answer
    assert thread_count(fresh_server, headers) == 1  # still answering
    await asyncio.to_thread(
        wait_until, lambda: thread_count(fresh_server, headers) == 0, "the left thread's deletion"
    )
    gone = httpx.get(f"{fresh_server.url}/threads/{thread_id}", headers=headers, timeout=10)
    assert gone.status_code == 404
