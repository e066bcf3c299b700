"""Liveness with the database's state, and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.deps import RuntimeDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/api/health")
async def health(runtime: RuntimeDep, settings: SettingsDep) -> JSONResponse:
    """200 with the database up, 503 while it is unreachable; recovers by itself."""
    try:
        async with asyncio.timeout(3), runtime.deps.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach it means "down", whatever its type
        return JSONResponse(
            {"status": "unavailable", "database": "down", "reason": type(exc).__name__},
            status_code=503,
        )
    return JSONResponse(
        {
            "status": "ok",
            "database": "up",
            "model": "openai" if settings.uses_openai else "offline",
            "active_turns": len(runtime.threads.runs.active),
            # `hybrid`: memories recalled by meaning and by words; `full_text`:
            # by words only (embeddings off, or no pgvector in the database).
            "memory_recall": runtime.vectors.mode if runtime.vectors else "full_text",
        }
    )


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
