"""Passwords (argon2) and opaque tokens (random, stored as SHA-256 hashes)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from pwdlib import PasswordHash
from starlette.responses import Response

from app.settings import Settings

LOGIN_COOKIE = "threadline_token"
ANON_COOKIE = "threadline_anon"
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


def new_token() -> str:
    """An opaque token: 256 random bits. Only its hash is stored."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # Tokens are high-entropy random strings, so a fast hash is enough here.
    return hashlib.sha256(token.encode()).hexdigest()


def set_private_cookie(
    response: Response, name: str, value: str, max_age: timedelta, settings: Settings
) -> None:
    """An HttpOnly, SameSite=Lax cookie for the whole site; Secure when served over https."""
    response.set_cookie(
        name,
        value,
        max_age=int(max_age.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.https,
    )


def clear_private_cookie(response: Response, name: str, settings: Settings) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=settings.https)
