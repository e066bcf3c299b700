"""The one way a command opens Threadline: settings, the database (the embedded
cluster, started or joined, if need be), migrations, the thread layer; errors
become one red line and exit 1."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

import typer

from app.cli.owner import TERMINAL_OWNER
from app.database import DatabaseChoice, DatabaseStartError, database_url
from app.settings import Settings
from memory.errors import DATABASE_DOWN, ThreadlineError
from memory.schema import migrate_sync
from memory.sessions import Owner
from threads.runtime import Runtime, open_runtime

T = TypeVar("T")
CLI_POOL_SIZE = 4


class UnknownUser(ThreadlineError):
    """`--user EMAIL` names no account."""

    code = "unknown_user"


def print_error(message: str) -> None:
    """`error: MESSAGE` on stderr, on one line: the first of a longer message (a
    parser's error can draw a caret under the input on the next ones)."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "failed")
    typer.secho(f"error: {first}", fg=typer.colors.RED, err=True)


def fail(message: str) -> typer.Exit:
    """Print the error; what to raise to end the command with exit code 1."""
    print_error(message)
    return typer.Exit(1)


def describe(exc: ThreadlineError) -> str:
    # The code first where it says more than "error": "busy: a turn is running ..."
    return str(exc) if exc.code == "error" else f"{exc.code}: {exc}"


@contextmanager
def migrated_database(settings: Settings, *, server: bool = False) -> Iterator[DatabaseChoice]:
    """The database to use, migrated; a start failure is one line and exit 1."""
    try:
        with database_url(settings, server=server) as db:
            migrate_sync(db.url)
            yield db
    except DatabaseStartError as exc:
        raise fail(str(exc)) from None


def run(work: Callable[[Runtime, Settings], Awaitable[T]]) -> T:
    """Open the thread layer, run `work` on it, turn domain errors into one line.

    SIGTERM ends the command like Ctrl-C does, through its clean-ups: the last
    process out of the embedded cluster stops it (an MCP client may end us so).
    """
    settings = Settings()
    with terminated_like_interrupted(), migrated_database(settings) as db:

        async def main() -> T:
            options = settings.thread_options(db_pool_size=CLI_POOL_SIZE)
            async with open_runtime(
                db.url, options, settings.chat_model(), embedder=settings.embedder()
            ) as runtime:
                return await work(runtime, settings)

        try:
            return asyncio.run(main())
        except ThreadlineError as exc:
            raise fail(describe(exc)) from None
        except DATABASE_DOWN as exc:
            raise fail(f"database_unavailable: {exc}") from None


@contextmanager
def terminated_like_interrupted() -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def owner_of(runtime: Runtime, email: str | None) -> Owner:
    """The account of `email`, or the terminal's own owner (as `threadline chat`)."""
    if email is None:
        return TERMINAL_OWNER
    user = await runtime.users.by_email(email)
    if user is None:
        raise UnknownUser(f"no user with email {email}")
    return Owner(user_id=user.id)
