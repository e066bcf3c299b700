"""Per-client rate limits: password checks, registrations, anonymous session
creation, anonymous turns.

Counts live in this process's memory (the `limits` package's storage), so N
processes behind a load balancer allow N times the rate: a throttle against abuse
from one address, not an exact quota. `THREADLINE_RATE_LIMITS=off` turns every
limit off (load tests).

Password guessing is slowed without locking the owner out: each address has a
budget of password checks whatever the account, and each (email, address) pair
that keeps failing waits longer after every failure. Nothing is counted per
email alone, so a guesser hammering someone's email from one place (or a few)
never stops them logging in from theirs.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import Depends
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import HTTPConnection

from app.settings import Settings
from memory.errors import ThreadlineError

PASSWORD_ATTEMPTS_PER_ADDRESS = parse("10/minute")
# Per (email, address): wrong passwords allowed before waiting, then a wait that
# doubles with every further failure, up to the longest. The count is forgotten a
# day after the first failure, and at once when the right password is given.
FREE_PASSWORD_FAILURES = 5
FIRST_WAIT_S = 2
LONGEST_WAIT_S = 15 * 60
FAILURES_KEPT_S = 24 * 3600
REGISTRATIONS_PER_ADDRESS = parse("10/minute")
ANONYMOUS_SESSIONS_PER_ADDRESS = parse("20/minute")
ANONYMOUS_TURNS_PER_ADDRESS = parse("20/minute")


class RateLimited(ThreadlineError):
    """Too many requests of one kind from one client address (or for one email from it)."""

    code = "rate_limited"


class RateLimits:
    """The process's limiter; every check raises RateLimited when over the limit."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(enabled=settings.rate_limits == "on")

    async def _hit(self, item: RateLimitItem, *key: str) -> None:
        if self.enabled and not await self._limiter.hit(item, *key):
            raise RateLimited(f"too many requests; at most {item} — try again shortly")

    async def password_attempt(self, client_ip: str | None, email: str) -> None:
        """Before every password check (login, password change, account deletion): the
        address's budget, and the wait its failures for this email earned. Known and
        unknown emails are treated alike, so a 429 tells nothing about an account."""
        await self._hit(PASSWORD_ATTEMPTS_PER_ADDRESS, "password/ip", client_ip or "unknown")
        if not self.enabled:
            return
        wait_key = _pair_key("password-wait", client_ip, email)
        if await self._storage.get(wait_key):
            left = max(1, math.ceil(await self._storage.get_expiry(wait_key) - time.time()))
            raise RateLimited(
                f"too many wrong passwords for this account from here; try again in {left} s"
            )

    async def password_failed(self, client_ip: str | None, email: str) -> None:
        """A wrong password: past the free failures, this (email, address) must wait,
        twice as long after each further failure."""
        if not self.enabled:
            return
        failures = await self._storage.incr(
            _pair_key("password-failures", client_ip, email), FAILURES_KEPT_S
        )
        if failures >= FREE_PASSWORD_FAILURES:
            doublings = min(failures - FREE_PASSWORD_FAILURES, 16)
            wait_key = _pair_key("password-wait", client_ip, email)
            await self._storage.clear(wait_key)
            await self._storage.incr(wait_key, min(FIRST_WAIT_S * 2**doublings, LONGEST_WAIT_S))

    async def password_succeeded(self, client_ip: str | None, email: str) -> None:
        """The right password: this (email, address) starts afresh."""
        for kind in ("password-failures", "password-wait"):
            await self._storage.clear(_pair_key(kind, client_ip, email))

    async def registration(self, client_ip: str | None) -> None:
        await self._hit(REGISTRATIONS_PER_ADDRESS, "register/ip", client_ip or "unknown")

    async def anonymous_session(self, client_ip: str | None) -> None:
        await self._hit(ANONYMOUS_SESSIONS_PER_ADDRESS, "anon-session/ip", client_ip or "unknown")

    async def turn(self, client_ip: str | None, *, anonymous: bool) -> None:
        """Anonymous turns are limited per address; logged-in turns are not."""
        if anonymous:
            await self._hit(ANONYMOUS_TURNS_PER_ADDRESS, "anon-turn/ip", client_ip or "unknown")


def _pair_key(kind: str, client_ip: str | None, email: str) -> str:
    return f"{kind}/{client_ip or 'unknown'}/{email.strip().lower()}"


def rate_limits_of(conn: HTTPConnection) -> RateLimits:
    """The limiter `create_app` put on `app.state` (HTTP requests and sockets alike)."""
    limits: RateLimits = conn.app.state.rate_limits
    return limits


def client_ip(conn: HTTPConnection) -> str | None:
    """The client's address (uvicorn already applied trusted X-Forwarded-For)."""
    return conn.client.host if conn.client else None


async def get_rate_limits(conn: HTTPConnection) -> RateLimits:
    return rate_limits_of(conn)  # a coroutine: see app/deps.py


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
