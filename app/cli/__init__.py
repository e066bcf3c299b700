"""`threadline`: serve, migrate, chat, mcp, and the `sessions` and `users` commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from app.cli.memories import memories_cli
from app.cli.runtime import migrated_database, print_error, run
from app.cli.sessions import sessions_cli
from app.cli.users import users_cli
from app.logs import configure_logging
from app.settings import Settings, settings_errors
from threads.runtime import Runtime

cli = typer.Typer(
    help="Threadline: a chat agent server whose memory never breaks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a bug's traceback stays plain; see main()
)
cli.add_typer(sessions_cli, name="sessions")
cli.add_typer(users_cli, name="users")
cli.add_typer(memories_cli, name="memories")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)", min=1, max=65535)] = None,
) -> None:
    """Run the server; with no DATABASE_URL, on an embedded PostgreSQL under ./data.

    One server per data directory; CLI commands may run beside it."""
    from app.main import create_app

    # The Host check serves the name the server is bound to: --host counts as set.
    settings = Settings(host=host) if host else Settings()
    configure_logging()
    with migrated_database(settings, server=True) as db:
        uvicorn.run(
            create_app(settings, db.url, on_shutdown=db.stop),
            host=host or settings.host,
            port=port or settings.port,
            log_config=None,
            access_log=False,  # app/logs.py AccessLog: no query strings in the log
            ws_max_size=settings.max_frame_bytes * 4,
            ws_per_message_deflate=settings.ws_compression,
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    with migrated_database(Settings()):
        pass
    typer.echo("database is up to date")


@cli.command()
def chat(
    session: Annotated[str | None, typer.Option(help="Resume this session id")] = None,
    user: Annotated[
        str | None,
        typer.Option(help="Chat as this user (email): kept, and remembered across threads"),
    ] = None,
) -> None:
    """Chat in the terminal, on the same graph and storage as the server.

    Without --user, as the terminal's own visitor: its threads expire like anonymous
    ones, and nothing is remembered across them."""
    from app.cli.terminal import chat_loop

    async def work(rt: Runtime, settings: Settings) -> None:
        await chat_loop(rt, settings, session, user)

    run(work)


@cli.command()
def mcp(
    user: Annotated[str | None, typer.Option(help="Serve this user's sessions (email)")] = None,
) -> None:
    """An MCP server over stdio with the session tools, scoped to one user."""
    from app.cli.mcp import serve_stdio

    run(lambda rt, _: serve_stdio(rt, user))


def main() -> None:
    """The console script. Every error is one line on stderr and a non-zero exit
    (docs/operations.md); only a bug, an exception nobody expected, shows a traceback."""
    try:
        code = cli(prog_name="threadline", standalone_mode=False)
    except typer.TyperException as exc:  # click's errors: bad usage, a missing file
        context = getattr(exc, "ctx", None)  # usage errors know their command
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        if exc.format_message().strip():  # blank: the help was shown (no arguments)
            print_error(f"{exc.format_message()}{hint}")
        code = exc.exit_code
    except typer.Abort:
        print_error("aborted")
        code = 1
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise  # a bug: every other model's errors are the commands' to report
        for line in settings_errors(exc):
            print_error(f"bad setting: {line}")
        code = 2
    sys.exit(code if isinstance(code, int) else 0)
