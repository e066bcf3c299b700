"""Background futures whose outcome nobody may await."""

from __future__ import annotations

import asyncio
from typing import Any


def retrieved(future: asyncio.Future[Any]) -> None:
    """A done callback: mark the future's outcome as seen, so asyncio does not
    log an error nobody retrieved (a load begun early whose turn ended first,
    an admission whose caller went away)."""
    if not future.cancelled():
        future.exception()
