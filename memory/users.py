"""Accounts and their login tokens (stored hashed; the raw token never is), and the
anonymous owners the server issued tokens to (memory/anonymous.py)."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from memory.anonymous import AnonymousOwners
from memory.api_keys import ApiKeys
from memory.db import Database
from memory.errors import ThreadlineError
from memory.models import AuthToken, ChatSession, User
from memory.rights import read_rights


class EmailTaken(ThreadlineError):
    code = "email_taken"


class InvalidCredentials(ThreadlineError):
    """Login refused: unknown email and wrong password answer the same."""

    code = "invalid_credentials"


class WrongPassword(ThreadlineError):
    """A logged-in user's re-entered password (to change it, or delete the account) is wrong."""

    code = "wrong_password"


class UserStore:
    """Who can prove an identity: accounts, their login tokens, anonymous owners."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.anonymous = AnonymousOwners(db)
        self.api_keys = ApiKeys(db)

    async def create(self, email: str, password_hash: str, display_name: str | None) -> User:
        """A new account; emails are unique whatever their case."""
        try:
            async with self.db.sessions.begin() as s:
                user = User(
                    email=email.strip(), password_hash=password_hash, display_name=display_name
                )
                s.add(user)
                await s.flush()
                await s.refresh(user)
                return user
        except IntegrityError:
            raise EmailTaken("an account with this email exists") from None

    async def by_email(self, email: str) -> User | None:
        async with self.db.sessions() as s:
            return await s.scalar(
                select(User).where(func.lower(User.email) == email.strip().lower())
            )

    async def get(self, user_id: str) -> User | None:
        async with self.db.sessions() as s:
            return await s.get(User, user_id)

    async def list(self) -> list[User]:
        async with self.db.sessions() as s:
            return list((await s.scalars(select(User).order_by(User.created_at))).all())

    async def set_retention(self, user_id: str, days: int | None) -> User:
        """Keep this account's threads (and what was learned from them) for `days`
        after their last activity; None: no retention of the account's own."""
        async with self.db.sessions.begin() as s:
            await s.execute(update(User).where(User.id == user_id).values(retention_days=days))
        user = await self.get(user_id)
        assert user is not None
        return user

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self.db.sessions.begin() as s:
            await s.execute(
                update(User).where(User.id == user_id).values(password_hash=password_hash)
            )

    async def add_token(self, token_hash: str, user_id: str, expires_at: datetime) -> None:
        async with self.db.sessions.begin() as s:
            s.add(AuthToken(token_hash=token_hash, user_id=user_id, expires_at=expires_at))

    async def user_for_token(self, token_hash: str) -> User | None:
        """The active user a live (unexpired, unrevoked) token belongs to (the
        rule is memory/rights.py's, which reads it beside a session too)."""
        rights = await read_rights(
            self.db,
            None,
            login_token_hash=token_hash,
            anon_token_hash=None,
        )
        return rights.user

    async def revoke_token(self, token_hash: str) -> None:
        async with self.db.sessions.begin() as s:
            await s.execute(
                update(AuthToken)
                .where(AuthToken.token_hash == token_hash)
                .values(revoked_at=func.now())
            )

    async def revoke_all_tokens(self, user_id: str, *, except_hash: str | None = None) -> None:
        query = update(AuthToken).where(
            AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None)
        )
        if except_hash is not None:
            query = query.where(AuthToken.token_hash != except_hash)
        async with self.db.sessions.begin() as s:
            await s.execute(query.values(revoked_at=func.now()))

    async def session_ids(self, user_id: str) -> builtins.list[str]:
        """Every session the user owns, expired ones too."""
        async with self.db.sessions() as s:
            query = select(ChatSession.id).where(ChatSession.user_id == user_id)
            return list((await s.scalars(query)).all())

    async def set_active(self, user_id: str, active: bool) -> None:
        """Switch an account off (its tokens stop proving anyone) or back on."""
        async with self.db.sessions.begin() as s:
            await s.execute(update(User).where(User.id == user_id).values(is_active=active))

    async def delete(self, user_id: str) -> None:
        """The account row; its tokens, sessions, journal and memories go by cascade.

        Checkpoints are not tied to the account by a key: delete the user's
        threads first (threads.accounts does, under their locks).
        """
        async with self.db.sessions.begin() as s:
            await s.execute(delete(User).where(User.id == user_id))
