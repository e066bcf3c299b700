"""The FastAPI app: its lifespan owns the engine, the pool, the saver and the graph."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.cleanup import start_cleanup, stop_cleanup
from app.errors import install_error_handlers
from app.ratelimit import RateLimits
from app.routes import auth, health, memories, sessions, ws
from app.services import open_services
from app.settings import Settings

log = logging.getLogger(__name__)
FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app(
    settings: Settings, database_url: str, *, on_shutdown: Callable[[], None] | None = None
) -> FastAPI:
    """An app on an already-migrated database at `database_url`.

    `on_shutdown` runs last (the embedded database's stop): uvicorn re-raises
    SIGTERM once its shutdown is done, so code after `uvicorn.run` never runs.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await open_services(settings, database_url)
        app.state.services = services
        services.memory_saver.start_owed_saves()
        cleanup = start_cleanup(services)
        log.info("threadline ready", extra={"model": services.model._llm_type})
        try:
            yield
        finally:
            await stop_cleanup(cleanup)
            await services.close()
            if on_shutdown is not None:
                await asyncio.to_thread(on_shutdown)

    app = FastAPI(title="Threadline", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.rate_limits = RateLimits.from_settings(settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(memories.router)
    app.include_router(ws.router)
    if FRONTEND_DIR.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app
