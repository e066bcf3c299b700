"""The one way a command opens Threadline: settings, the database (embedded if
need be), migrations, the thread layer; errors become one red line and exit 1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer

from app.cli.owner import TERMINAL_OWNER
from app.database import DatabaseChoice, DatabaseStartError, database_url
from app.settings import Settings
from memory.errors import ThreadlineError
from memory.schema import migrate_sync
from memory.sessions import Owner
from threads.runtime import Runtime, open_runtime

T = TypeVar("T")
CLI_POOL_SIZE = 4


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@contextmanager
def migrated_database(settings: Settings) -> Iterator[DatabaseChoice]:
    """The database to use, migrated; a start failure is one line and exit 1."""
    try:
        with database_url(settings) as db:
            migrate_sync(db.url)
            yield db
    except DatabaseStartError as exc:
        raise fail(str(exc)) from None


def run(work: Callable[[Runtime, Settings], Awaitable[T]]) -> T:
    """Open the thread layer, run `work` on it, turn domain errors into one line."""
    settings = Settings()
    with migrated_database(settings) as db:

        async def main() -> T:
            options = settings.thread_options(db_pool_size=CLI_POOL_SIZE)
            async with open_runtime(db.url, options, settings.chat_model()) as runtime:
                return await work(runtime, settings)

        try:
            return asyncio.run(main())
        except ThreadlineError as exc:
            # The code first where it says more than "error": "busy: a turn is running ..."
            raise fail(str(exc) if exc.code == "error" else f"{exc.code}: {exc}") from None


async def owner_of(runtime: Runtime, email: str | None) -> Owner:
    """The account of `email`, or the terminal's own owner (as `threadline chat`)."""
    if email is None:
        return TERMINAL_OWNER
    user = await runtime.users.by_email(email)
    if user is None:
        raise ThreadlineError(f"no user with email {email}")
    return Owner(user_id=user.id)
