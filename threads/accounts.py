"""Changes to an identity that change who may use which thread: an anonymous owner
issued or ended, a claim, logout, a new password, deleting the account. Every open
socket of the identity re-checks its rights right after, in every process."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from memory.errors import SessionNotFound
from memory.models import ChatSession, User
from threads.access import Caller
from threads.operations import Threads


@dataclass
class Accounts:
    threads: Threads

    async def issue_anonymous(self, token_hash: str, ttl: timedelta) -> None:
        """Register the hash of a token the server just made for a visitor: the only
        way an anonymous token comes to prove anything. It lives `ttl` past its last use."""
        await self.threads.users.anonymous.issue(token_hash, ttl)

    async def claim(self, session_id: str, caller: Caller) -> tuple[ChatSession, bool]:
        """The caller's anonymous session becomes their account's (Threads.claim). When
        it was the anonymous owner's last session, the owner ends too, so a copy of its
        token (say, one planted in this browser) proves nothing afterwards. Returns the
        session and whether the anonymous owner ended."""
        claimed = await self.threads.claim(session_id, caller)
        anon = caller.anon_token_hash
        ended = anon is not None and await self.threads.users.anonymous.end_if_empty(anon)
        return claimed, ended

    async def logout(self, caller: Caller) -> None:
        """Revoke the login token in use and end the anonymous owner shown with it, so
        the next person at this browser reaches neither; sockets opened with either
        lose their rights."""
        users, events = self.threads.users, self.threads.events
        if caller.user is not None and caller.login_token_hash is not None:
            await users.revoke_token(caller.login_token_hash)
            await events.access_changed(user_id=caller.user.id)
        if caller.anon_token_hash is not None:
            for session_id in await users.anonymous.end(caller.anon_token_hash):
                await events.access_changed(session_id=session_id)

    async def change_password(self, caller: Caller, new_hash: str) -> None:
        """Set a new password hash; every other login token of the user is revoked."""
        user = caller.require_user()
        users = self.threads.users
        await users.set_password_hash(user.id, new_hash)
        await users.revoke_all_tokens(user.id, except_hash=caller.login_token_hash)
        await self.threads.events.access_changed(user_id=user.id)

    async def delete(self, user: User) -> None:
        """The account and everything of it, with nothing left behind.

        The account is switched off first (no new query passes the rights check),
        then each thread is taken under its lock after its running turn is asked
        to stop, so no turn writes a checkpoint after its thread is gone. If a
        turn keeps a thread past the wait, the account is switched back on and
        the deletion answers busy (the threads deleted so far stay deleted).
        """
        t = self.threads
        await t.users.set_active(user.id, False)
        await t.events.access_changed(user_id=user.id)
        try:
            for session_id in await t.users.session_ids(user.id):
                await t.events.request_cancel(session_id)
                async with t.locks.hold(session_id, wait_s=t.options.lock_wait_s):
                    with contextlib.suppress(SessionNotFound):  # deleted meanwhile
                        await t.deps.sessions.delete(session_id, None, forget=True)
        except BaseException:
            await t.users.set_active(user.id, True)
            raise
        await t.users.delete(user.id)
