"""Passwords (argon2, and the rule a new one must pass), opaque tokens (random,
stored as SHA-256 hashes) and the cookies that carry them."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta
from importlib import resources

from pwdlib import PasswordHash
from starlette.requests import HTTPConnection
from starlette.responses import Response

from app.settings import Settings

LOGIN_COOKIE = "threadline_token"
ANON_COOKIE = "threadline_anon"
# Over https, cookies carry this prefix: a browser keeps such a cookie only if it is
# Secure, for Path=/ and without a Domain, so no sibling subdomain can plant one.
HOST_PREFIX = "__Host-"
PASSWORD_MIN = 8
COMMON_PASSWORDS = "common_passwords.txt"  # beside this module
_hasher = PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher.verify(password, password_hash)


# Compared against when the email is unknown, so both failures take as long.
_DUMMY_HASH = hash_password("threadline-timing-equaliser")


def verify_or_waste(password: str, password_hash: str | None) -> bool:
    """Check a password; with no account, spend the same time and fail."""
    if password_hash is None:
        verify_password(password, _DUMMY_HASH)
        return False
    return verify_password(password, password_hash)


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower case (read on first use)."""
    text = resources.files("app").joinpath(COMMON_PASSWORDS).read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_new_password(password: str) -> str:
    """A new password (register, change) must have 8 characters besides leading and
    trailing spaces and be none of the common passwords (ignoring case). Raises
    ValueError, which the API answers with 422."""
    core = password.strip()
    if len(core) < PASSWORD_MIN:
        raise ValueError(
            f"the password needs at least {PASSWORD_MIN} characters, not counting spaces"
            " at either end"
        )
    if core.lower() in common_passwords():
        raise ValueError("the password is one of the most common passwords; choose another")
    return password


def new_token() -> str:
    """An opaque token: 256 random bits. Only its hash is stored."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens are high-entropy random strings, so a fast hash is enough here.
    return hashlib.sha256(token.encode()).hexdigest()


def cookie_name(name: str, settings: Settings) -> str:
    """The name a cookie goes by: `__Host-` prefixed when served over https."""
    return HOST_PREFIX + name if settings.https else name


def read_cookie(conn: HTTPConnection, name: str, settings: Settings) -> str | None:
    """A cookie's value, read under the name it is set with (only that one)."""
    return conn.cookies.get(cookie_name(name, settings)) or None


def set_private_cookie(
    response: Response, name: str, value: str, max_age: timedelta, settings: Settings
) -> None:
    """An HttpOnly, SameSite=Lax cookie for the whole site (Path=/, no Domain); over
    https Secure and `__Host-` prefixed."""
    response.set_cookie(
        cookie_name(name, settings),
        value,
        max_age=int(max_age.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.https,
    )


def clear_private_cookie(response: Response, name: str, settings: Settings) -> None:
    """Tell the browser to drop the cookie, replacing any value set earlier in this
    same response (a sliding renewal, say), so only the removal is sent."""
    cookie = cookie_name(name, settings)
    earlier = f"{cookie}=".encode("latin-1")
    response.raw_headers[:] = [
        (key, value)
        for key, value in response.raw_headers
        if not (key == b"set-cookie" and value.startswith(earlier))
    ]
    response.delete_cookie(cookie, path="/", httponly=True, samesite="lax", secure=settings.https)
