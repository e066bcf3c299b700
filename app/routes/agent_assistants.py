"""The Agent Server API's assistant: found, counted, and described (its graph
and the shapes of what a run takes and gives; docs/agent-server-api.md).

One assistant, `threadline`: the supervisor graph every thread runs. Its
schemas describe the API's view of a thread (what `runs` take as `input`, what
`state` and `runs.wait` answer as `values`), not the graph's internal state,
which holds the turn's working set and is nobody's input.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from app.deps import ThreadsDep, UserDep
from app.routes.agent_api import ASSISTANT_ID, assistant, known_assistant

router = APIRouter(tags=["agent server api"])


def message_schema(types: list[str]) -> dict[str, Any]:
    """A LangChain message dict of one of `types`."""
    return {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": types},
            "id": {"type": "string"},
            "content": {"type": "string"},
        },
        "required": ["type", "content"],
    }


INPUT_SCHEMA = {
    "title": "ThreadlineInput",
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "items": message_schema(["human", "user"]),
            "description": "the last human message is the question asked",
        }
    },
    "required": ["messages"],
}
VALUES_SCHEMA = {
    "title": "ThreadlineValues",
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "items": message_schema(["human", "ai"]),
            "description": "the thread as its user sees it: the journal, its newest messages",
        }
    },
}
NOTHING_SCHEMA = {"type": "object", "properties": {}}


class AssistantSearch(BaseModel):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=0, le=1000)
    offset: int = Field(0, ge=0)


class AssistantCount(BaseModel):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None


def is_wanted(body: AssistantSearch | AssistantCount) -> bool:
    """Whether the one assistant is of the graph id and name asked for (as
    LangGraph's server matches a name: a part of it, any case) and holds every
    key of the metadata asked for."""
    held = assistant()
    return (
        body.graph_id in (None, ASSISTANT_ID)
        and (body.name is None or body.name.lower() in held["name"].lower())
        and all(held["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
    )


@router.post("/assistants/search")
async def search_assistants(body: AssistantSearch, user: UserDep) -> list[dict[str, Any]]:
    if not is_wanted(body) or body.offset > 0 or body.limit == 0:
        return []
    return [assistant()]


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, user: UserDep) -> dict[str, Any]:
    known_assistant(assistant_id)
    return assistant()


@router.post("/assistants/count")
async def count_assistants(body: AssistantCount, user: UserDep) -> int:
    return 1 if is_wanted(body) else 0


@router.get("/assistants/{assistant_id}/graph")
async def get_graph(
    assistant_id: str, user: UserDep, threads: ThreadsDep, xray: bool | int = False
) -> dict[str, Any]:
    """The graph's nodes and edges, as LangGraph draws them."""
    known_assistant(assistant_id)
    drawn: dict[str, Any] = threads.deps.graph.get_graph(xray=xray).to_json()
    return drawn


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(assistant_id: str, user: UserDep) -> dict[str, Any]:
    known_assistant(assistant_id)
    return {
        "graph_id": ASSISTANT_ID,
        "input_schema": INPUT_SCHEMA,
        "output_schema": VALUES_SCHEMA,
        "state_schema": VALUES_SCHEMA,
        "config_schema": NOTHING_SCHEMA,
        "context_schema": NOTHING_SCHEMA,
    }


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_subgraphs(assistant_id: str, user: UserDep) -> dict[str, Any]:
    """None: the supervisor graph is one graph."""
    known_assistant(assistant_id)
    return {}


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_subgraphs_in(assistant_id: str, namespace: str, user: UserDep) -> dict[str, Any]:
    """None under any namespace either."""
    known_assistant(assistant_id)
    return {}


class VersionSearch(BaseModel):
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=0, le=1000)
    offset: int = Field(0, ge=0)


@router.post("/assistants/{assistant_id}/versions")
async def get_versions(
    assistant_id: str, body: VersionSearch, user: UserDep
) -> list[dict[str, Any]]:
    """Its one version (1): the assistant is not changed or versioned here."""
    known_assistant(assistant_id)
    held = assistant()
    wanted = all(held["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
    return [held] if wanted and body.offset == 0 and body.limit > 0 else []


class LatestVersion(BaseModel):
    version: int


@router.post("/assistants/{assistant_id}/latest")
async def set_latest(assistant_id: str, body: LatestVersion, user: UserDep) -> dict[str, Any]:
    """Version 1 is the latest, and the only one: any other is not found."""
    known_assistant(assistant_id)
    if body.version != assistant()["version"]:
        raise HTTPException(404, f"no version {body.version} of this assistant: it has one, 1")
    return assistant()
