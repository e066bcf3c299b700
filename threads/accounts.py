"""Changes to an account that change who may use which thread: logout, a new
password, deleting the account. Every open socket of the account re-checks its
rights right after, in every process."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from memory.errors import SessionNotFound
from memory.models import User
from threads.access import Caller
from threads.operations import Threads


@dataclass
class Accounts:
    threads: Threads

    async def logout(self, caller: Caller) -> None:
        """Revoke the token in use; sockets opened with it lose their rights."""
        if caller.user is None or caller.login_token_hash is None:
            return
        await self.threads.users.revoke_token(caller.login_token_hash)
        await self.threads.events.access_changed(user_id=caller.user.id)

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
