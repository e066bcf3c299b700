"""LangGraph's Agent Server API, driven by the real `langgraph-sdk` Python
client against the shared real server (`server`, tests/conftest.py)."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.support.api import memories, new_session, register
from tests.support.server import ServerProcess
from tests.support.turns import wait_idle
from tests.support.ws import Sockets


def client_for(server: ServerProcess, headers: dict[str, str]) -> Any:
    return get_client(url=server.url, headers=headers, api_key=None)


async def test_the_sdk_creates_a_thread_streams_a_run_and_reads_its_state(
    server: ServerProcess,
) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        await converse(server, headers, client)


async def converse(server: ServerProcess, headers: dict[str, str], client: Any) -> None:
    [assistant] = await client.assistants.search()
    assert assistant["graph_id"] == "threadline"
    thread = await client.threads.create(metadata={"title": "From the SDK"})
    assert thread["status"] == "idle" and thread["metadata"]["title"] == "From the SDK"

    events = []
    async for part in client.runs.stream(
        thread["thread_id"],
        "threadline",
        input={"messages": [{"type": "human", "content": "my name is Ada Lovelace"}]},
        stream_mode=["values", "messages-tuple", "updates"],
    ):
        events.append(part)
    kinds = [e.event for e in events]
    assert kinds[0] == "metadata" and kinds[-2:] == ["values", "end"]
    streamed = "".join(
        e.data[0]["content"]
        for e in events
        if e.event == "messages" and e.data[0]["type"] == "AIMessageChunk"
    )
    assert "Ada Lovelace" in streamed
    updates = [next(iter(e.data)) for e in events if e.event == "updates"]
    assert updates[:3] == ["initialize", "planning", "execution"] and updates[-1] == "response"
    final = events[-2].data["messages"]
    assert [m["type"] for m in final] == ["human", "ai"] and final[1]["content"] == streamed

    state = await client.threads.get_state(thread["thread_id"])
    assert [m["content"] for m in state["values"]["messages"]] == [
        "my name is Ada Lovelace",
        streamed,
    ]
    history = await client.threads.get_history(thread["thread_id"])
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]

    # runs.wait: the same thread, the values once done
    values = await client.runs.wait(
        thread["thread_id"],
        "threadline",
        input={"messages": [{"type": "human", "content": "what is my name?"}]},
    )
    assert "Your name is Ada Lovelace" in values["messages"][-1]["content"]
    # the states before the latest, named as the SDK allows: its id, the checkpoint, a config
    history = await client.threads.get_history(thread["thread_id"])
    latest = history[0]["checkpoint"]
    for before in (latest["checkpoint_id"], latest, {"configurable": latest}):
        earlier = await client.threads.get_history(thread["thread_id"], before=before)
        assert len(history) == 2 and earlier == history[1:]
    for odd in ({"configurable": None}, {"configurable": "x"}, {"checkpoint_id": 5}, "seq-x"):
        assert await client.threads.get_history(thread["thread_id"], before=odd) == history
    # a state of the history, read again by its checkpoint id or its checkpoint
    first = history[1]["checkpoint"]
    for at in ({"checkpoint_id": first["checkpoint_id"]}, {"checkpoint": first}):
        assert await client.threads.get_state(thread["thread_id"], **at) == history[1]
    for odd_id in ("seq-x", "seq--1", "seq-99", "latest"):
        with pytest.raises(httpx.HTTPStatusError) as missing:
            await client.threads.get_state(thread["thread_id"], checkpoint_id=odd_id)
        assert missing.value.response.status_code == 404

    # the same thread, as the browser's REST API sees it
    journal = httpx.get(
        f"{server.url}/api/sessions/{thread['thread_id']}/messages", headers=headers, timeout=10
    ).json()["messages"]
    assert [m["content"] for m in journal] == [m["content"] for m in values["messages"]]
    found = await client.threads.search(metadata={"title": "From the SDK"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]


async def test_a_threads_metadata_is_kept_merged_and_searched(server: ServerProcess) -> None:
    headers = register(server)
    async with (
        client_for(server, headers) as client,
        client_for(server, register(server)) as theirs,
    ):
        first = await client.threads.create(metadata={"project": "atlas", "priority": 2})
        second = await client.threads.create(
            metadata={"project": "atlas", "owner": {"team": "maps"}, "title": "Second"}
        )
        for _ in range(12):  # newer threads of other metadata, filling a first page
            await client.threads.create(metadata={"project": "other"})
        got = await client.threads.get(first["thread_id"])
        assert got["metadata"]["project"] == "atlas" and got["metadata"]["priority"] == 2
        assert got["metadata"]["graph_id"] == "threadline"

        async def found(**search: Any) -> list[str]:
            return [t["thread_id"] for t in await client.threads.search(**search)]

        both = [second["thread_id"], first["thread_id"]]  # newest first
        assert await found(metadata={"project": "atlas"}, limit=2) == both
        assert await found(metadata={"project": "atlas"}, limit=1, offset=1) == both[1:]
        assert await found(metadata={"project": "atlas", "priority": 2}) == both[1:]
        assert await found(metadata={"owner": {"team": "maps"}}) == both[:1]
        assert await found(metadata={"title": "Second", "project": "atlas"}) == both[:1]
        assert await found(metadata={"project": "atlas"}, status="idle") == both
        assert await found(metadata={"project": "atlas"}, status="busy") == []
        assert await found(metadata={"project": "nowhere"}) == []
        assert await theirs.threads.search(metadata={"project": "atlas"}) == []
        # counted as searched, over every page
        assert await client.threads.count() == 14
        assert await client.threads.count(metadata={"project": "atlas"}) == 2
        assert await client.threads.count(metadata={"project": "atlas"}, status="idle") == 2
        assert await client.threads.count(metadata={"project": "atlas"}, status="busy") == 0
        assert await client.threads.count(metadata={"graph_id": "another"}) == 0
        assert await theirs.threads.count(metadata={"project": "atlas"}) == 0
        for unsupported in (client.threads.count, client.threads.search):
            with pytest.raises(httpx.HTTPStatusError) as by_values:
                await unsupported(values={"messages": []})
            assert by_values.value.response.status_code == 422

        # PATCH merges: a key given again takes its new value, the others stay
        patched = await client.threads.update(
            first["thread_id"], metadata={"priority": 3, "stage": "done"}
        )
        assert {k: patched["metadata"][k] for k in ("project", "priority", "stage")} == {
            "project": "atlas",
            "priority": 3,
            "stage": "done",
        }
        # what PostgreSQL cannot store, or too much of it: 422, and nothing changed
        for bad in ({"note": "a\u0000b"}, {"note": "x" * 20_000}, {"k\ud800": 1}):
            body = json.dumps({"metadata": bad})
            for method, path in (
                ("POST", "/threads"),
                ("PATCH", f"/threads/{first['thread_id']}"),
            ):
                reply = httpx.request(
                    method,
                    f"{server.url}{path}",
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                    timeout=10,
                )
                assert reply.status_code == 422, (path, reply.text)
                assert reply.json()["error"]["code"] == "invalid_input"
        assert (await client.threads.get(first["thread_id"]))["metadata"] == patched["metadata"]


async def test_a_run_keeps_what_it_was_asked_with(server: ServerProcess, ws: Sockets) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        thread_id = (await client.threads.create())["thread_id"]
        await client.runs.wait(
            thread_id,
            "threadline",
            input={"messages": [{"type": "human", "content": "hello"}]},
            metadata={"source": "nightly", "batch": [1, 2]},
            multitask_strategy="interrupt",
        )
        [run] = await client.runs.list(thread_id)
        assert run["metadata"] == {"source": "nightly", "batch": [1, 2]}
        assert run["multitask_strategy"] == "interrupt"
        assert await client.runs.get(thread_id, run["run_id"]) == run
        # what the browser asks (over the socket) was asked with nothing
        socket = await ws.open(server, thread_id, headers)
        await socket.ask("and again")
        await socket.until("done")
        latest = (await client.runs.list(thread_id))[0]
        assert (latest["metadata"], latest["multitask_strategy"]) == ({}, "reject")
        # metadata PostgreSQL cannot store: 422, and no question journaled
        human_hi = {"type": "human", "content": "hi"}
        reply = httpx.post(
            f"{server.url}/threads/{thread_id}/runs/wait",
            content=json.dumps({"input": {"messages": [human_hi]}, "metadata": {"x": "\u0000"}}),
            headers={**headers, "content-type": "application/json"},
            timeout=10,
        )
        assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_input"
        assert len(await client.runs.list(thread_id)) == 2


async def test_the_assistant_is_counted_and_described(server: ServerProcess) -> None:
    async with client_for(server, register(server)) as client:
        [assistant] = await client.assistants.search(name="threadline")
        assert await client.assistants.search(name="another") == []
        assert await client.assistants.count() == 1
        assert await client.assistants.count(graph_id="another") == 0
        assert await client.assistants.count(metadata={"created_by": "someone"}) == 0
        for assistant_id in ("threadline", assistant["assistant_id"]):
            graph = await client.assistants.get_graph(assistant_id)
            edges = {(e["source"], e["target"]) for e in graph["edges"]}
            assert {("__start__", "initialize"), ("initialize", "planning")} <= edges
            assert {("planning", "execution"), ("execution", "planning")} <= edges
            assert ("response", "__end__") in edges
            schemas = await client.assistants.get_schemas(assistant_id)
            assert schemas["graph_id"] == "threadline"
            assert schemas["input_schema"]["required"] == ["messages"]
            assert "messages" in schemas["state_schema"]["properties"]
            assert await client.assistants.get_subgraphs(assistant_id) == {}
            assert await client.assistants.get_subgraphs(assistant_id, namespace="x") == {}
            assert await client.assistants.get_versions(assistant_id) == [assistant]
            assert await client.assistants.set_latest(assistant_id, 1) == assistant
        assert await client.assistants.get_versions("threadline", metadata={"x": 1}) == []
        with pytest.raises(httpx.HTTPStatusError) as other_version:
            await client.assistants.set_latest("threadline", 2)
        assert other_version.value.response.status_code == 404
        for call in (client.assistants.get_graph, client.assistants.get_schemas):
            with pytest.raises(httpx.HTTPStatusError) as unknown:
                await call("another")
            assert unknown.value.response.status_code == 404


async def test_another_users_thread_answers_like_a_missing_one(server: ServerProcess) -> None:
    async with (
        client_for(server, register(server)) as mine,
        client_for(server, register(server)) as theirs,
    ):
        await isolated(mine, theirs)


async def isolated(mine: Any, theirs: Any) -> None:
    thread = await mine.threads.create()
    missing = str(uuid.uuid4())
    for thread_id, read in itertools.product(
        (thread["thread_id"], missing, "not-a-uuid"),
        (theirs.threads.get, lambda t: theirs.threads.get_state(t, checkpoint_id="seq-0")),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await read(thread_id)
        assert refused.value.response.status_code == 404
        assert refused.value.response.json()["error"]["code"] == "not_found"
    assert await theirs.threads.search() == []
    # Created by id: one's own thread is there (given back, or 409); another's
    # answers as a made-up id does (ids are the server's to make).
    again = await mine.threads.create(thread_id=thread["thread_id"], if_exists="do_nothing")
    assert again["thread_id"] == thread["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as exists:
        await mine.threads.create(thread_id=thread["thread_id"])
    assert exists.value.response.status_code == 409
    for thread_id in (thread["thread_id"], missing):
        with pytest.raises(httpx.HTTPStatusError) as made_up:
            await theirs.threads.create(thread_id=thread_id, if_exists="do_nothing")
        assert made_up.value.response.status_code == 422


async def test_no_login_no_api(server: ServerProcess) -> None:
    reply = httpx.post(f"{server.url}/threads/search", json={}, timeout=10)
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "unauthorized"


async def test_bad_runs_are_clear_4xx(server: ServerProcess) -> None:
    headers = register(server)
    thread = httpx.post(f"{server.url}/threads", json={}, headers=headers, timeout=10).json()
    url = f"{server.url}/threads/{thread['thread_id']}/runs/wait"
    for body, status in [
        ({"assistant_id": "threadline", "input": {"messages": []}}, 422),
        ({"assistant_id": "nobody", "input": {"messages": "hi"}}, 404),
        ({"assistant_id": "threadline", "input": {"messages": "hi"}, "stream_mode": "x"}, 422),
        (
            {
                "assistant_id": "threadline",
                "input": {"messages": [{"type": "human", "content": 5}]},
            },
            422,
        ),
    ]:
        reply = httpx.post(url, json=body, headers=headers, timeout=10)
        assert reply.status_code == status, (body, reply.text)
        assert "error" in reply.json()


async def test_calls_not_supported_say_so(server: ServerProcess) -> None:
    """The SDK's calls Threadline does not make answer what is not supported,
    and why, not a bare 404 or 405; the thread is untouched."""
    async with client_for(server, register(server)) as client:
        thread = await client.threads.create()
        thread_id = thread["thread_id"]
        await client.runs.wait(thread_id, "threadline", input={"messages": "I live in Oslo"})
        [run] = await client.runs.list(thread_id)
        calls = [
            (client.assistants.create("threadline"), 404, "assistants.create"),
            (client.assistants.update("threadline", name="x"), 405, "assistants.update"),
            (client.assistants.delete("threadline"), 405, "assistants.delete"),
            (client.threads.update_state(thread_id, {"messages": []}), 405, "update_state"),
            (client.runs.delete(thread_id, run["run_id"]), 405, "runs.delete"),
            (client.crons.create("threadline", schedule="* * * * *"), 404, "crons"),
            (
                client.crons.create_for_thread(thread_id, "threadline", schedule="* * * * *"),
                404,
                "crons",
            ),
            (client.crons.search(), 404, "crons"),
            (client.crons.count(), 404, "crons"),
            (client.crons.delete(str(uuid.uuid4())), 404, "crons"),
        ]
        for call, status, named in calls:
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await call
            reply = refused.value.response
            assert reply.status_code == status, (named, reply.text)
            error = reply.json()["error"]
            assert error["code"] == "not_supported" and named in error["message"], error
            assert status == 404 or reply.headers["allow"] == "GET"
        state = await client.threads.get_state(thread_id)
        assert [m["content"] for m in state["values"]["messages"]][0] == "I live in Oslo"
        assert len(await client.runs.list(thread_id)) == 1


async def test_a_question_the_journal_refuses_is_no_run(server: ServerProcess) -> None:
    """A NUL, a lone surrogate, an over-long or empty question: 422 from every way
    of asking a run, before its row is written (the thread has no run after)."""
    headers = register(server)
    thread = httpx.post(f"{server.url}/threads", json={}, headers=headers, timeout=10).json()
    base = f"{server.url}/threads/{thread['thread_id']}/runs"
    questions = ['"hi\\u0000there"', '"\\ud800"', '"   "', json.dumps("x" * 40_000)]
    for path, question in itertools.product(("/wait", "/stream", ""), questions):
        body = (
            '{"assistant_id": "threadline", "input": {"messages": '
            f'[{{"type": "human", "content": {question}}}]}}}}'
        )
        reply = httpx.post(
            base + path,
            content=body,
            headers={**headers, "content-type": "application/json"},
            timeout=10,
        )
        assert reply.status_code == 422, (path, question[:20], reply.text)
        assert "error" in reply.json()
    listed = httpx.get(base, headers=headers, timeout=10)
    assert listed.status_code == 200 and listed.json() == []


async def test_personal_api_keys_work_as_x_api_key_until_revoked(server: ServerProcess) -> None:
    headers = register(server)
    made = httpx.post(
        f"{server.url}/api/auth/api-keys", json={"name": "my script"}, headers=headers, timeout=10
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("tl_") and made.json()["prefix"] == key[:10]
    listed = httpx.get(f"{server.url}/api/auth/api-keys", headers=headers, timeout=10).json()
    assert [k["name"] for k in listed["api_keys"]] == ["my script"]
    assert "key" not in listed["api_keys"][0]  # shown once, when made

    async with get_client(url=server.url, api_key=key) as client:
        thread = await client.threads.create()
        values = await client.runs.wait(
            thread["thread_id"], "threadline", input={"messages": "my name is Grace"}
        )
        assert values["messages"][-1]["type"] == "ai"
    # the key's thread is the user's, in the browser's API too
    mine = httpx.get(f"{server.url}/api/sessions", headers=headers, timeout=10).json()
    assert thread["thread_id"] in [s["id"] for s in mine["sessions"]]

    other = register(server)
    refused = httpx.delete(
        f"{server.url}/api/auth/api-keys/{made.json()['id']}", headers=other, timeout=10
    )
    assert refused.status_code == 404  # another user's key: as if missing
    revoked = httpx.delete(
        f"{server.url}/api/auth/api-keys/{made.json()['id']}", headers=headers, timeout=10
    )
    assert revoked.status_code == 204
    gone = httpx.post(
        f"{server.url}/threads/search", json={}, headers={"x-api-key": key}, timeout=10
    )
    assert gone.status_code == 401
    made_up = httpx.post(
        f"{server.url}/threads/search", json={}, headers={"x-api-key": "tl_made_up"}, timeout=10
    )
    assert made_up.status_code == 401


async def test_a_run_from_an_earlier_checkpoint_regenerates_or_edits_the_last_turn(
    server: ServerProcess,
) -> None:
    """Agent Chat UI's regenerate (no input, from the state before the last
    question) and edit (a new human message from there): on the journal, nothing
    doubled; any other earlier state is a clear 422."""
    headers = register(server)
    async with client_for(server, headers) as client:
        thread_id = (await client.threads.create())["thread_id"]
        for question in ("my name is Ada Lovelace", "what is my name?"):
            human = {"type": "human", "content": question}
            await client.runs.wait(thread_id, "threadline", input={"messages": [human]})
        latest = (await client.threads.get_history(thread_id))[0]
        before_question = latest["parent_checkpoint"]
        answered = latest["values"]["messages"]

        regenerated = await client.runs.wait(
            thread_id, "threadline", checkpoint_id=before_question["checkpoint_id"]
        )
        messages = regenerated["messages"]
        assert [m["id"] for m in messages] == [m["id"] for m in answered]
        assert "Your name is Ada Lovelace" in messages[-1]["content"]

        edited = await client.runs.wait(
            thread_id,
            "threadline",
            input={"messages": [{"type": "human", "content": "where do I live?"}]},
            checkpoint=before_question,
        )
        contents = [m["content"] for m in edited["messages"]]
        assert len(contents) == 4 and contents[:2] == [m["content"] for m in answered[:2]]
        assert contents[2] == "where do I live?" and "what is my name?" not in contents

        def journal() -> list[str]:
            url = f"{server.url}/api/sessions/{thread_id}/messages"
            reply = httpx.get(url, headers=headers, timeout=10)
            return [m["content"] for m in reply.json()["messages"]]

        assert journal() == contents
        asking = {
            "assistant_id": "threadline",
            "input": {"messages": [{"type": "human", "content": "hi"}]},
        }
        now = (await client.threads.get_state(thread_id))["checkpoint"]["checkpoint_id"]
        for body in (
            {**asking, "checkpoint_id": "seq-1"},  # an older question
            {**asking, "checkpoint_id": "not-a-checkpoint"},
            {"assistant_id": "threadline", "checkpoint_id": now},  # no input, nothing to redo
        ):
            reply = httpx.post(
                f"{server.url}/threads/{thread_id}/runs/wait",
                json=body,
                headers=headers,
                timeout=30,
            )
            assert reply.status_code == 422, reply.text
        assert journal() == contents


async def test_background_runs_create_get_join_and_cancel(fresh_server: ServerProcess) -> None:
    """runs.create answers once the question is journaled; the run is named by it,
    so runs.get reads its status from the journal in any process; join waits for
    its end; a cancelled run is `interrupted` with its partial answer kept."""
    server = fresh_server
    server.env["THREADLINE_OFFLINE_TOKEN_DELAY_MS"] = "100"  # answers of several seconds
    server.start()
    headers = register(server)
    human = {"type": "human", "content": "my name is Grace Hopper"}
    async with client_for(server, headers) as client:
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(thread_id, "threadline", input={"messages": [human]})
        assert run["status"] == "running" and run["thread_id"] == thread_id
        assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "running"
        values = await client.runs.join(thread_id, run["run_id"])
        assert "offline model" in values["messages"][-1]["content"]
        assert (await client.runs.get(thread_id, run["run_id"]))["status"] == "success"
        assert (await client.threads.get(thread_id))["status"] == "idle"

        again = {"type": "human", "content": "tell me a long story"}
        slow = await client.runs.create(thread_id, "threadline", input={"messages": [again]})
        await client.runs.cancel(thread_id, slow["run_id"])
        values = await client.runs.join(thread_id, slow["run_id"])
        assert (await client.runs.get(thread_id, slow["run_id"]))["status"] == "interrupted"
        assert len(values["messages"]) == 4  # the stopped answer is journaled too

        listed = await client.runs.list(thread_id)
        assert [(r["run_id"], r["status"]) for r in listed] == [
            (slow["run_id"], "interrupted"),
            (run["run_id"], "success"),
        ]
        assert [r["run_id"] for r in await client.runs.list(thread_id, status="success")] == [
            run["run_id"]
        ]
        assert [r["run_id"] for r in await client.runs.list(thread_id, limit=1, offset=1)] == [
            run["run_id"]
        ]

        for missing in (str(uuid.uuid4()), "not-a-run", values["messages"][1]["id"]):
            reply = httpx.get(
                f"{server.url}/threads/{thread_id}/runs/{missing}", headers=headers, timeout=10
            )
            assert reply.status_code == 404, (missing, reply.text)
    stranger = register(server)
    reply = httpx.get(
        f"{server.url}/threads/{thread_id}/runs/{run['run_id']}", headers=stranger, timeout=10
    )
    assert reply.status_code == 404


async def test_a_thread_written_over_the_websocket_reads_the_same_through_the_sdk(
    server: ServerProcess, ws: Sockets
) -> None:
    headers = register(server)
    session = new_session(server, headers)
    sock = await ws.open(server, session["id"], headers)
    asked = await sock.ask("I live in Tromsø")
    await sock.until("done")
    journal = httpx.get(
        f"{server.url}/api/sessions/{session['id']}/messages", headers=headers, timeout=10
    ).json()["messages"]
    async with client_for(server, headers) as client:
        state = await client.threads.get_state(session["id"])
        assert [(m["id"], m["content"]) for m in state["values"]["messages"]] == [
            (m["id"], m["content"]) for m in journal
        ]
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
        [run] = await client.runs.list(session["id"])
        assert run["run_id"] == asked and run["status"] == "success"


async def test_a_copied_thread_holds_the_conversation_and_goes_on_alone(
    server: ServerProcess, server_database: str
) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        thread = await client.threads.create(metadata={"title": "Original", "team": "blue"})
        thread_id = thread["thread_id"]
        for text in ("My name is Ada Lovelace.", "hello again"):
            await client.runs.wait(thread_id, "threadline", input={"messages": text})
        await wait_idle(server)
        before = memories(server, headers)

        copy = await client.threads.copy(thread_id)
        assert copy["thread_id"] != thread_id
        assert copy["metadata"]["title"] == "Original" and copy["metadata"]["team"] == "blue"
        original = (await client.threads.get_state(thread_id))["values"]["messages"]
        copied = (await client.threads.get_state(copy["thread_id"]))["values"]["messages"]
        assert [(m["type"], m["content"]) for m in copied] == [
            (m["type"], m["content"]) for m in original
        ]
        assert not {m["id"] for m in copied} & {m["id"] for m in original}
        runs = await client.runs.list(copy["thread_id"])
        assert [r["status"] for r in runs] == ["success", "success"]  # answers follow questions

        # It goes on alone: the original is unchanged, the copy knows its past.
        values = await client.runs.wait(
            copy["thread_id"], "threadline", input={"messages": "What did I say first?"}
        )
        assert len(values["messages"]) == 6
        assert len((await client.threads.get_state(thread_id))["values"]["messages"]) == 4
        await wait_idle(server)
        # It taught nothing twice (no second summary of the same conversation),
        # and its question told nothing new.
        assert {m["id"] for m in memories(server, headers)} == {m["id"] for m in before}
    stranger = register(server)
    reply = httpx.post(f"{server.url}/threads/{thread_id}/copy", headers=stranger, timeout=10)
    assert reply.status_code == 404 and "error" in reply.json()


async def test_prune_deletes_the_callers_threads_only(server: ServerProcess) -> None:
    headers, other = register(server), register(server)
    async with client_for(server, other) as client:
        theirs = (await client.threads.create())["thread_id"]
    async with client_for(server, headers) as client:
        mine = [(await client.threads.create())["thread_id"] for _ in range(3)]
        await client.runs.wait(mine[2], "threadline", input={"messages": "hello"})
        asked = [mine[0], mine[1], mine[1], theirs, str(uuid.uuid4()), "not-an-id"]
        assert await client.threads.prune(asked) == {"pruned_count": 2}
        assert [t["thread_id"] for t in await client.threads.search()] == [mine[2]]
        assert await client.threads.prune([mine[2]], strategy="keep_latest") == {"pruned_count": 1}
        state = await client.threads.get_state(mine[2])
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"]
    async with client_for(server, other) as client:
        assert (await client.threads.get(theirs))["thread_id"] == theirs
