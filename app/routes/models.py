"""The models a chat may choose: the server's default and, with an
OpenAI-compatible endpoint, every model it lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ThreadsDep

router = APIRouter(prefix="/api/models", tags=["models"])


@router.get("")
async def list_models(threads: ThreadsDep) -> dict[str, Any]:
    """`{"models": ["gpt-4o-mini", …], "default": "gpt-4o-mini"}`; the offline
    model alone is `["offline"]`. A chat picks one with `PATCH /api/sessions/{id}`."""
    models = threads.deps.models
    if models is None:
        return {"models": ["offline"], "default": "offline"}
    return {"models": await models.names(), "default": models.default_name}
