"""The FastAPI app: its lifespan opens the thread layer (threads/runtime.py)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.errors import install_error_handlers
from app.logs import AccessLog
from app.mcp_http import mount_mcp
from app.ratelimit import RateLimits
from app.routes import (
    agent_api,
    agent_assistants,
    agent_runs,
    agent_stateless,
    agent_store,
    agent_unsupported,
    auth,
    health,
    memories,
    models,
    sessions,
    ws,
)
from app.security import Perimeter
from app.settings import Settings
from threads.runtime import open_runtime

log = logging.getLogger(__name__)
FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


# The cyclic collector's youngest generation is collected once this many more
# objects were made than freed (Python's default: 700).
YOUNG_COLLECTION_AT = 10_000


def settle_heap() -> None:
    """Keep what the start made out of later full collections, and collect the
    young objects less often.

    The modules, the compiled graph, the ORM's mappers and the pools live as
    long as the process: about 300,000 objects that every full (oldest
    generation) collection walked again, a pause of 110-120 ms in the middle
    of whatever turns were running (9.5 ms once they are frozen;
    docs/benchmarks.md, ws_load's first turns). Collected once, then frozen
    (`gc.freeze`): they are never collected, which they would not be anyway.

    Turns running side by side keep thousands of young objects alive at once
    (messages, frames, futures), which live a turn and go by reference
    counting: at Python's default of 700, 50 clients set off 1.4 young
    collections a turn, each walking what was alive then, and every tenth
    an older one; 5% of the server's CPU went to collecting nothing. At
    YOUNG_COLLECTION_AT, 7 young collections in 1,000 turns, of about 4 ms
    each (docs/benchmarks.md, the fast path).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AT, *gc.get_threshold()[1:])


def create_app(
    settings: Settings, database_url: str, *, on_shutdown: Callable[[], None] | None = None
) -> FastAPI:
    """An app on an already-migrated database at `database_url`.

    `on_shutdown` runs last (the embedded database's stop): uvicorn re-raises
    SIGTERM once its shutdown is done, so code after `uvicorn.run` never runs.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            chat_models = settings.models()
            async with (
                open_runtime(
                    database_url,
                    settings.thread_options(),
                    chat_models,
                    background=True,
                    embedder=settings.embedder(),
                    pooled_url=settings.pooled_url(),
                ) as runtime,
                mcp_serving,
            ):
                app.state.runtime = runtime
                settle_heap()
                log.info("threadline ready", extra={"model": chat_models.default_name})
                yield
        finally:
            if on_shutdown is not None:
                await asyncio.to_thread(on_shutdown)

    app = FastAPI(title="Threadline", version="1", lifespan=lifespan)
    app.state.settings = settings
    mcp_serving = mount_mcp(app)  # MCP over streamable HTTP at /mcp
    app.state.rate_limits = RateLimits.from_settings(settings)
    # Middleware added last runs first: the access log sees every request, the
    # perimeter (app/security.py) checks it and heads every reply, including the
    # 500s that install_error_handlers' middleware makes.
    install_error_handlers(app)
    app.add_middleware(Perimeter, settings=settings)
    if settings.allowed_origins:
        # Browser apps on the origins allowed (Agent Chat UI, say) may call the
        # APIs with a key or a token, never with this site's cookies, and may read
        # the run ids in Location and Content-Location.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "x-api-key", "last-event-id"],
            expose_headers=["Location", "Content-Location"],
            allow_credentials=False,
        )
    app.add_middleware(AccessLog)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(memories.router)
    app.include_router(models.router)
    app.include_router(ws.router)
    app.include_router(agent_api.router)
    app.include_router(agent_assistants.router)
    app.include_router(agent_runs.router)
    app.include_router(agent_stateless.router)
    app.include_router(agent_store.router)
    app.include_router(agent_unsupported.router)
    if FRONTEND_DIR.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app
