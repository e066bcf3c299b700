"""`threadline`: serve, migrate, chat."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from app.database import DatabaseStartError, database_url
from app.logs import configure_logging
from app.settings import Settings
from memory.schema import migrate_sync

cli = typer.Typer(
    help="Threadline: a chat agent server whose memory never breaks.", no_args_is_help=True
)


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000)")] = None,
) -> None:
    """Run the server; with no DATABASE_URL, on an embedded PostgreSQL under ./data."""
    from app.main import create_app

    settings = Settings()
    configure_logging()
    try:
        with database_url(settings) as db:
            migrate_sync(db.url)
            uvicorn.run(
                create_app(settings, db.url, on_shutdown=db.stop),
                host=host or settings.host,
                port=port or settings.port,
                log_config=None,
                ws_max_size=settings.max_frame_bytes * 4,
                timeout_graceful_shutdown=int(settings.shutdown_grace_s),
            )
    except DatabaseStartError as exc:
        raise fail(str(exc)) from None


@cli.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    settings = Settings()
    try:
        with database_url(settings) as db:
            migrate_sync(db.url)
    except DatabaseStartError as exc:
        raise fail(str(exc)) from None
    typer.echo("database is up to date")


@cli.command()
def chat(
    session: Annotated[str | None, typer.Option(help="Resume this session id")] = None,
) -> None:
    """Chat in the terminal, on the same graph and storage as the server."""
    from app.terminal import chat_loop

    settings = Settings()
    try:
        with database_url(settings) as db:
            migrate_sync(db.url)
            asyncio.run(chat_loop(settings, db.url, session))
    except DatabaseStartError as exc:
        raise fail(str(exc)) from None


@cli.command()
def mcp(
    user: Annotated[str | None, typer.Option(help="Serve this user's sessions (email)")] = None,
) -> None:
    """An MCP server over stdio with the session tools, scoped to one user."""
    from app.mcp_server import serve_stdio

    settings = Settings()
    try:
        with database_url(settings) as db:
            migrate_sync(db.url)
            serve_stdio(settings, db.url, user)
    except DatabaseStartError as exc:
        raise fail(str(exc)) from None


def main() -> None:
    from app.operations import sessions_cli, users_cli

    cli.add_typer(sessions_cli, name="sessions")
    cli.add_typer(users_cli, name="users")
    cli()
