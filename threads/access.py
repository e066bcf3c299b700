"""Who is asking, and whether they may use a thread: one check for every entry point.

A caller is known by the hashes of the tokens it shows (a login token, an
anonymous owner's token). Only tokens the server issued and that are still live
prove anything: a made-up anonymous token is as good as none. Rights are read
afresh from the database each time they are checked, so a logout, a claim or a
deleted account takes effect on the next check, even for a socket opened before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from memory.errors import ThreadlineError
from memory.models import ChatSession, User
from memory.rights import read_rights
from memory.sessions import Owner
from memory.users import UserStore


class NotSignedIn(ThreadlineError):
    """The operation needs a logged-in user (or any owner at all) and there is none."""

    code = "unauthorized"


@dataclass(frozen=True)
class Credentials:
    """What a caller shows: token hashes, never the tokens themselves."""

    login_token_hash: str | None = None
    anon_token_hash: str | None = None
    api_key_hash: str | None = None  # a personal API key (`x-api-key`) proves its user


@dataclass(frozen=True)
class Caller:
    """Who is asking: a logged-in user, an anonymous owner, both, or nobody."""

    credentials: Credentials = Credentials()
    user: User | None = None
    anonymous: bool = False  # the anonymous token shown is one the server issued, still live

    @property
    def login_token_hash(self) -> str | None:
        return self.credentials.login_token_hash if self.user is not None else None

    @property
    def anon_token_hash(self) -> str | None:
        """The anonymous owner's token hash, only when the server issued that token."""
        return self.credentials.anon_token_hash if self.anonymous else None

    @property
    def owner(self) -> Owner | None:
        if self.user is None and self.anon_token_hash is None:
            return None
        return Owner(
            user_id=self.user.id if self.user else None, anon_token_hash=self.anon_token_hash
        )

    def require_owner(self) -> Owner:
        owner = self.owner
        if owner is None:
            raise NotSignedIn("log in, or create a session first")
        return owner

    def require_user(self) -> User:
        if self.user is None:
            raise NotSignedIn("log in first")
        return self.user


async def identify(users: UserStore, credentials: Credentials) -> Caller:
    """The caller these credentials prove today: a revoked token proves no user, and
    an anonymous token the server did not issue (or that expired) proves no owner."""
    caller, _ = await identify_with_session(users, credentials, None)
    return caller


async def identify_with_session(
    users: UserStore, credentials: Credentials, session_id: str | None
) -> tuple[Caller, ChatSession | None]:
    """`identify`, and the session `session_id` (None: none), read in one
    statement (memory/rights.py): a socket asks both before every question, an
    Agent Server API request (with its personal API key) before it touches a
    thread. No token at all costs no statement (such a caller is refused before
    any session)."""
    shown = credentials.login_token_hash or credentials.anon_token_hash
    if not (shown or credentials.api_key_hash):
        return Caller(credentials), None
    rights = await read_rights(
        users.db,
        session_id,
        login_token_hash=credentials.login_token_hash,
        anon_token_hash=credentials.anon_token_hash,
        api_key_hash=credentials.api_key_hash,
    )
    if rights.key_id is not None:
        await users.api_keys.record_use(rights.key_id, rights.key_last_used_at)
    if rights.anonymous_stale and credentials.anon_token_hash is not None:
        await users.anonymous.slide(credentials.anon_token_hash)
    return Caller(credentials, rights.user, rights.anonymous_live), rights.session
