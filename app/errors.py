"""Domain errors to HTTP status codes and WebSocket error frames, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ratelimit import RateLimited
from graph.errors import ModelUnavailable
from memory.api_keys import ApiKeyNotFound
from memory.errors import (
    DATABASE_DOWN,
    DatabaseUnavailable,
    InvalidInput,
    MessageIdConflict,
    SessionNotFound,
    ThreadlineError,
)
from memory.memories import MemoryNotFound
from memory.users import EmailTaken, InvalidCredentials, WrongPassword
from threads.access import NotSignedIn
from threads.locks import SessionBusy
from threads.runs import ShuttingDown, TurnFailed

log = logging.getLogger(__name__)

HTTP_STATUS: dict[type[ThreadlineError], int] = {
    InvalidInput: 422,
    SessionNotFound: 404,
    MemoryNotFound: 404,
    ApiKeyNotFound: 404,
    MessageIdConflict: 409,
    EmailTaken: 409,
    SessionBusy: 409,
    ShuttingDown: 503,
    InvalidCredentials: 401,
    NotSignedIn: 401,
    WrongPassword: 403,
    RateLimited: 429,
    ModelUnavailable: 503,
    DatabaseUnavailable: 503,
    TurnFailed: 500,
}


def status_of(exc: ThreadlineError) -> int:
    for kind, status in HTTP_STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def internal_error(method: str, path: str, exc: BaseException) -> JSONResponse:
    """Log an unexpected error (app/logs.py keeps SQL parameters out) and answer 500."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    return JSONResponse(error_body("internal", "internal error"), status_code=500)


class UnexpectedErrors:
    """An exception a route lets escape becomes a 500 here, inside the app's
    middleware, not in Starlette's outermost handler: so the reply still passes
    the perimeter (app/security.py: its headers) and the connection stays usable
    (Starlette re-raises to the server, which then drops the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise  # half a reply is out: nothing to do but let the server drop it
            await internal_error(scope["method"], scope["path"], exc)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as JSON `{error: {code, message}}`, never HTML or a traceback."""

    @app.exception_handler(ThreadlineError)
    async def domain_error(request: Request, exc: ThreadlineError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=status_of(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            415: "unsupported_media_type",
            429: "rate_limited",
        }
        return JSONResponse(
            error_body(code.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse(error_body("invalid_input", problems[:1000]), status_code=422)

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, type(exc).__name__)
        return JSONResponse(
            error_body("database_unavailable", "the database is unavailable; retry shortly"),
            status_code=503,
        )

    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, database_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only what escapes the middleware outside UnexpectedErrors reaches here.
        return internal_error(request.method, request.url.path, exc)

    app.add_middleware(UnexpectedErrors)
