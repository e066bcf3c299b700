"""The Agent Server API's store (docs/agent-server-api.md): the SDK's
`client.store.*`, over what the assistant remembers of the caller.

The store is the caller's own memories, the same ones the assistant loads in
planning and `/api/memories` lists: namespace `["memories", <kind>]` (kinds
`fact`, `preference`, `entity`, and `summary` for past conversations, read
only), the key a memory's subject key (`work`, `location`, … as the assistant
keys what it learns), or its id when it has none; the value
`{"content": …}`, with its `kind`, `id` and the `thread_id` it was learned in.
A search with a `query` is recall itself (by meaning where vectors are on);
without one, the newest first. Another user's memories are never seen.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from app.deps import MemoriesDep, ThreadsDep, UserDep
from app.routes.agent_api import iso
from memory.memories import CONTENT_MAX, KINDS, MemoryDraft
from memory.models import Memory

router = APIRouter(tags=["agent server api"])

ROOT = "memories"
WRITABLE = ("fact", "preference", "entity")  # summaries are written by a thread's saves
SEARCH_MAX = 100
Namespace = Annotated[list[str], Field(max_length=8)]


def kinds_under(prefix: list[str]) -> list[str]:
    """The memory kinds a namespace prefix covers ([] and ["memories"]: all)."""
    if not prefix:
        return list(KINDS)
    if prefix[0] != ROOT or len(prefix) > 2:
        return []
    return list(KINDS) if len(prefix) == 1 else [k for k in KINDS if k == prefix[1]]


def kind_of(namespace: list[str], *, writing: bool = False) -> str:
    """The kind a whole namespace names; 422 for any other namespace."""
    if len(namespace) == 2 and namespace[0] == ROOT and namespace[1] in KINDS:
        if writing and namespace[1] not in WRITABLE:
            raise HTTPException(422, "past conversations' summaries are written by the threads")
        return namespace[1]
    kinds = "|".join(WRITABLE if writing else KINDS)
    raise HTTPException(
        422, f'this store holds the caller\'s memories: namespace ["{ROOT}", {kinds}]'
    )


def item(memory: Memory) -> dict[str, Any]:
    return {
        "namespace": [ROOT, memory.kind],
        "key": memory.key or memory.id,
        "value": {
            "content": memory.content,
            "kind": memory.kind,
            "id": memory.id,
            "thread_id": memory.source_session_id,
        },
        "created_at": iso(memory.created_at),
        "updated_at": iso(memory.updated_at),
    }


class PutItem(BaseModel):
    namespace: Namespace
    key: str = Field(min_length=1, max_length=200)
    value: dict[str, Any]
    index: bool | list[str] | None = None  # every memory is indexed for recall
    ttl: float | None = None


@router.put("/store/items", status_code=204, response_class=Response)
async def put_item(body: PutItem, user: UserDep, memories: MemoriesDep) -> None:
    """Remember `value.content` under the key: the memory of that key (or id)
    changes, or a new one is made (keyed: a later put of the key replaces it,
    as the assistant's own learning does)."""
    kind = kind_of(body.namespace, writing=True)
    if body.ttl is not None:
        raise HTTPException(422, "memories do not expire by themselves here (no ttl)")
    content = body.value.get("content")
    if not isinstance(content, str) or set(body.value) - {"content", "kind", "id", "thread_id"}:
        raise HTTPException(422, 'the value is a memory: {"content": "<text>"}')
    if not 1 <= len(content.strip()) <= CONTENT_MAX:
        raise HTTPException(422, f"content must be 1 to {CONTENT_MAX} characters")
    found = await memories.find(user.id, kind, body.key)
    if found is not None:
        await memories.update(user.id, found.id, content=content, key=None)
    else:
        await memories.add(user.id, MemoryDraft(kind, body.key, content))


@router.get("/store/items")
async def get_item(
    user: UserDep,
    memories: MemoriesDep,
    threads: ThreadsDep,
    key: Annotated[str, Query(min_length=1, max_length=200)],
    namespace: Annotated[str, Query(max_length=200)] = "",
) -> dict[str, Any]:
    kind = kind_of(namespace.split(".") if namespace else [])
    await threads.settle_memories(user.id)  # what was said a moment ago is there
    found = await memories.find(user.id, kind, key)
    if found is None:
        raise HTTPException(404, "item not found")
    return item(found)


class DeleteItem(BaseModel):
    namespace: Namespace
    key: str = Field(min_length=1, max_length=200)


@router.delete("/store/items", status_code=204, response_class=Response)
async def delete_item(body: DeleteItem, user: UserDep, memories: MemoriesDep) -> None:
    """Forget the memory, as "What I remember" does (the summaries that say it
    word for word say it no more); nothing to forget is no error."""
    found = await memories.find(user.id, kind_of(body.namespace), body.key)
    if found is not None:
        await memories.delete(user.id, found.id)


class SearchItems(BaseModel):
    namespace_prefix: Namespace = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=SEARCH_MAX)
    offset: int = Field(0, ge=0, le=1000)
    query: str | None = Field(None, max_length=2000)


@router.post("/store/items/search")
async def search_items(
    body: SearchItems, user: UserDep, memories: MemoriesDep, threads: ThreadsDep
) -> dict[str, Any]:
    """The caller's memories under the prefix whose value holds every key of
    `filter` with its value: with a `query`, the ones recall finds for it, the
    best first (each with a `score` by rank); else the newest first."""
    kinds = kinds_under(body.namespace_prefix)
    await threads.settle_memories(user.id)
    wanted = body.offset + body.limit
    if body.query and body.query.strip():
        found = await memories.search(user.id, body.query, kinds, limit=wanted)
    else:
        found = [m for k in kinds for m in await memories.list(user.id, kind=k, limit=wanted)]
        found.sort(key=lambda m: m.updated_at, reverse=True)
    items = [item(m) for m in found]
    if body.filter:
        items = [i for i in items if all(i["value"].get(k) == v for k, v in body.filter.items())]
    page = items[body.offset : wanted]
    if body.query and body.query.strip():
        for rank, found_item in enumerate(page, start=body.offset + 1):
            found_item["score"] = round(1 / rank, 4)
    return {"items": page}


class ListNamespaces(BaseModel):
    prefix: Namespace | None = None
    suffix: Namespace | None = None
    max_depth: int | None = Field(None, ge=1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


@router.post("/store/namespaces")
async def list_namespaces(
    body: ListNamespaces, user: UserDep, memories: MemoriesDep
) -> dict[str, Any]:
    """`["memories", <kind>]` for each kind the caller has memories of."""
    held = await memories.kinds_held(user.id)
    spaces = [[ROOT, kind] for kind in KINDS if kind in held]
    if body.prefix:
        spaces = [s for s in spaces if s[: len(body.prefix)] == body.prefix]
    if body.suffix:
        spaces = [s for s in spaces if s[-len(body.suffix) :] == body.suffix]
    if body.max_depth is not None:
        spaces = [list(t) for t in dict.fromkeys(tuple(s[: body.max_depth]) for s in spaces)]
    return {"namespaces": spaces[body.offset : body.offset + body.limit]}
