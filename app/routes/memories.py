"""`/api/memories`: what the assistant remembers about the logged-in user."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from app.deps import MemoriesDep, ThreadsDep, UserDep
from memory.memories import CONTENT_MAX, MemoryDraft

router = APIRouter(prefix="/api/memories", tags=["memories"])
Kind = Literal["summary", "preference", "entity", "fact"]


class NewMemory(BaseModel):
    kind: Kind = "fact"
    key: str | None = Field(default=None, max_length=200)
    content: str = Field(min_length=1, max_length=CONTENT_MAX)


class MemoryChange(BaseModel):
    key: str | None = Field(default=None, max_length=200)
    content: str | None = Field(default=None, min_length=1, max_length=CONTENT_MAX)


@router.get("")
async def list_memories(
    memories: MemoriesDep,
    threads: ThreadsDep,
    user: UserDep,
    kind: Kind | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    await threads.settle_memories(user.id)  # what was said a moment ago is listed
    rows = await memories.list(user.id, kind=kind, q=q, limit=limit)
    return {"memories": [m.as_dict() for m in rows]}


@router.post("", status_code=201)
async def add_memory(memories: MemoriesDep, user: UserDep, body: NewMemory) -> dict[str, Any]:
    memory = await memories.add(user.id, MemoryDraft(body.kind, body.key, body.content))
    return memory.as_dict()


@router.get("/{memory_id}")
async def get_memory(memories: MemoriesDep, user: UserDep, memory_id: str) -> dict[str, Any]:
    return (await memories.get(user.id, memory_id)).as_dict()


@router.patch("/{memory_id}")
async def change_memory(
    memories: MemoriesDep, user: UserDep, memory_id: str, body: MemoryChange
) -> dict[str, Any]:
    memory = await memories.update(user.id, memory_id, content=body.content, key=body.key)
    return memory.as_dict()


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(memories: MemoriesDep, user: UserDep, memory_id: str) -> Response:
    await memories.delete(user.id, memory_id)
    return Response(status_code=204)
