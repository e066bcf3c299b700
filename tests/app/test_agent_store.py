"""The Agent Server API's store over the caller's memories, driven by the real
`langgraph-sdk` Python client against the shared real server (`server`,
tests/conftest.py; PostgreSQL without pgvector: recall by full text)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

from tests.support.api import memories, register
from tests.support.server import ServerProcess


def client_for(server: ServerProcess, headers: dict[str, str]) -> Any:
    return get_client(url=server.url, headers=headers, api_key=None)


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"type": "human", "content": text}]}


async def test_the_store_is_what_the_assistant_remembers(server: ServerProcess) -> None:
    headers = register(server)
    async with client_for(server, headers) as client:
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], "threadline", input=human("I live in Oslo."))

        # What it learned is in the store, keyed by its subject.
        found = await client.store.search_items(["memories"])
        [home] = [i for i in found["items"] if i["key"] == "location"]
        assert home["namespace"] == ["memories", "fact"]
        assert home["value"]["content"] == "User said: I live in Oslo"
        assert home["value"]["thread_id"] == thread["thread_id"]
        got = await client.store.get_item(["memories", "fact"], "location")
        assert got["value"] == home["value"]
        assert (await client.store.get_item(["memories", "fact"], home["value"]["id"]))["key"] == (
            "location"
        )

        # What is put there, the assistant knows in its next thread.
        await client.store.put_item(
            ["memories", "preference"], "coffee", {"content": "I drink my coffee black"}
        )
        item = await client.store.get_item(["memories", "preference"], "coffee")
        assert item["value"]["content"] == "I drink my coffee black"
        other = await client.threads.create()
        answer = await client.runs.wait(
            other["thread_id"], "threadline", input=human("How do I take my coffee?")
        )
        assert "I drink my coffee black" in answer["messages"][-1]["content"]

        # A put of the same key changes it; a search finds it by its words.
        await client.store.put_item(
            ["memories", "preference"], "coffee", {"content": "I drink my coffee with oat milk"}
        )
        hits = await client.store.search_items(["memories"], query="coffee milk")
        assert [i["value"]["content"] for i in hits["items"]][:1] == [
            "I drink my coffee with oat milk"
        ]
        assert hits["items"][0]["score"] == 1.0
        kinds = await client.store.list_namespaces(prefix=["memories"])
        assert ["memories", "fact"] in kinds["namespaces"]
        assert ["memories", "preference"] in kinds["namespaces"]
        only = await client.store.search_items(["memories", "preference"], filter={"kind": "fact"})
        assert only["items"] == []

        # Deleted from the store: forgotten.
        await client.store.delete_item(["memories", "preference"], "coffee")
        with pytest.raises(NotFoundError):
            await client.store.get_item(["memories", "preference"], "coffee")
        assert all("coffee" not in m["content"] for m in memories(server, headers))
        await client.store.delete_item(["memories", "preference"], "coffee")  # no error


async def test_another_users_store_is_not_seen(server: ServerProcess) -> None:
    mine, theirs = register(server), register(server)
    async with client_for(server, theirs) as client:
        await client.store.put_item(["memories", "fact"], "secret", {"content": "I hide gold"})
        own = await client.store.get_item(["memories", "fact"], "secret")
    async with client_for(server, mine) as client:
        assert (await client.store.search_items([], query="gold"))["items"] == []
        assert (await client.store.search_items(["memories"]))["items"] == []
        for key in ("secret", own["value"]["id"]):
            with pytest.raises(NotFoundError):
                await client.store.get_item(["memories", "fact"], key)
        await client.store.delete_item(["memories", "fact"], own["value"]["id"])
    async with client_for(server, theirs) as client:
        assert (await client.store.get_item(["memories", "fact"], "secret"))["value"] == own[
            "value"
        ]


async def test_bad_store_calls_are_clear_4xx(server: ServerProcess) -> None:
    headers = register(server)
    put = f"{server.url}/store/items"
    ok = {"namespace": ["memories", "fact"], "key": "k", "value": {"content": "I am here"}}
    for body in [
        {**ok, "namespace": ["documents", "user"]},
        {**ok, "namespace": ["memories", "summary"]},
        {**ok, "value": {"title": "no content"}},
        {**ok, "value": {"content": ""}},
        {**ok, "value": {"content": "x" * 4001}},
        {**ok, "value": {"content": "nul \u0000"}},
        {**ok, "key": ""},
        {**ok, "ttl": 5},
    ]:
        reply = httpx.put(put, json=body, headers=headers, timeout=10)
        assert reply.status_code == 422, (body, reply.text)
        assert "error" in reply.json()
    reply = httpx.get(put, params={"namespace": "docs", "key": "k"}, headers=headers, timeout=10)
    assert reply.status_code == 422
    reply = httpx.put(put, json=ok, timeout=10)
    assert reply.status_code == 401
    assert memories(server, headers) == []
