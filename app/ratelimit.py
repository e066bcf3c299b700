"""Per-client rate limits: login attempts, anonymous session creation, anonymous turns.

Counts live in this process's memory (a moving window from the `limits`
package), so N processes behind a load balancer allow N times the rate: a
throttle against abuse from one address, not an exact quota.
`THREADLINE_RATE_LIMITS=off` turns every limit off (load tests).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from app.settings import Settings
from memory.errors import ThreadlineError

PASSWORD_ATTEMPTS_PER_ADDRESS = parse("10/minute")
PASSWORD_ATTEMPTS_PER_EMAIL = parse("10/minute")
REGISTRATIONS_PER_ADDRESS = parse("10/minute")
ANONYMOUS_SESSIONS_PER_ADDRESS = parse("20/minute")
ANONYMOUS_TURNS_PER_ADDRESS = parse("20/minute")


class RateLimited(ThreadlineError):
    """Too many requests of one kind from one client address (or for one email)."""

    code = "rate_limited"


class RateLimits:
    """The process's limiter; every check raises RateLimited when over the limit."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(enabled=settings.rate_limits == "on")

    async def _hit(self, item: RateLimitItem, *key: str) -> None:
        if self.enabled and not await self._limiter.hit(item, *key):
            raise RateLimited(f"too many requests; at most {item} — try again shortly")

    async def password_attempt(self, client_ip: str | None, email: str) -> None:
        """Every password check (login, password change, account deletion) counts,
        per address and per account, so guessing is slow from anywhere."""
        await self._hit(PASSWORD_ATTEMPTS_PER_ADDRESS, "password/ip", client_ip or "unknown")
        await self._hit(PASSWORD_ATTEMPTS_PER_EMAIL, "password/email", email.strip().lower())

    async def registration(self, client_ip: str | None) -> None:
        await self._hit(REGISTRATIONS_PER_ADDRESS, "register/ip", client_ip or "unknown")

    async def anonymous_session(self, client_ip: str | None) -> None:
        await self._hit(ANONYMOUS_SESSIONS_PER_ADDRESS, "anon-session/ip", client_ip or "unknown")

    async def turn(self, client_ip: str | None, *, anonymous: bool) -> None:
        """Anonymous turns are limited per address; logged-in turns are not."""
        if anonymous:
            await self._hit(ANONYMOUS_TURNS_PER_ADDRESS, "anon-turn/ip", client_ip or "unknown")


def rate_limits_of(conn: HTTPConnection) -> RateLimits:
    """The limiter `create_app` put on `app.state` (HTTP requests and sockets alike)."""
    limits: RateLimits = conn.app.state.rate_limits
    return limits


def client_ip(conn: HTTPConnection) -> str | None:
    """The client's address (uvicorn already applied trusted X-Forwarded-For)."""
    return conn.client.host if conn.client else None


RateLimitsDep = Annotated[RateLimits, Depends(rate_limits_of)]
