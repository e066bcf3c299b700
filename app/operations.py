"""Operator commands: `threadline sessions ...` and `threadline users ...`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress

from app.auth import hash_password
from app.database import DatabaseStartError, database_url
from app.export import all_messages, export_json, export_markdown
from app.schemas import session_out, user_out
from app.settings import Settings
from app.terminal import TERMINAL_OWNER
from memory.db import Database, open_database
from memory.errors import ThreadlineError
from memory.imports import import_scope, import_sessions, read_sessions
from memory.journal import Journal
from memory.maintenance import cleanup_expired, find_expired, merge_sessions
from memory.schema import migrate_sync
from memory.sessions import Owner, SessionStore
from memory.users import UserStore

sessions_cli = typer.Typer(help="List, show, export, import, merge and clean up sessions.")
users_cli = typer.Typer(help="Create and list accounts.")
T = TypeVar("T")
MIN_PASSWORD = 8


@dataclass
class Stores:
    settings: Settings
    db: Database
    sessions: SessionStore
    journal: Journal
    users: UserStore

    async def owner(self, email: str | None) -> Owner:
        """The account of `email`, or the terminal's own owner (as `threadline chat`)."""
        if email is None:
            return TERMINAL_OWNER
        user = await self.users.by_email(email)
        if user is None:
            raise ThreadlineError(f"no user with email {email}")
        return Owner(user_id=user.id)


@asynccontextmanager
async def stores(settings: Settings, url: str) -> AsyncIterator[Stores]:
    db = await open_database(url, pool_size=4)
    anon_ttl = timedelta(hours=settings.anon_ttl_hours)
    retention = timedelta(days=settings.retention_days) if settings.retention_days else None
    try:
        yield Stores(
            settings,
            db,
            SessionStore(db, anon_ttl=anon_ttl, retention=retention),
            Journal(db, anon_ttl=anon_ttl),
            UserStore(db),
        )
    finally:
        await db.close()


def run(work: Callable[[Stores], Awaitable[T]]) -> T:
    """Open the database (embedded if need be), run `work`, turn errors into one line."""
    settings = Settings()
    try:
        with database_url(settings) as db:
            migrate_sync(db.url)

            async def main() -> T:
                async with stores(settings, db.url) as opened:
                    return await work(opened)

            return asyncio.run(main())
    except (DatabaseStartError, ThreadlineError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


UserOption = Annotated[
    str | None, typer.Option("--user", help="Owner's email (default: the terminal's own)")
]


@sessions_cli.command("list")
def list_sessions(
    user: UserOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    limit: int = 100,
) -> None:
    """Sessions of a user (or of the terminal), newest activity first."""

    async def work(s: Stores) -> list[dict[str, Any]]:
        found, _ = await s.sessions.list(await s.owner(user), archived=None, limit=limit)
        return [session_out(session) for session in found]

    rows = run(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        when, count = row["last_activity_at"][:19], row["message_count"]
        typer.echo(f"{row['id']}  {when}  {count:>5}  {row['title'] or '-'}")


@sessions_cli.command("show")
def show_session(session_id: str, user: UserOption = None) -> None:
    """A session and its messages."""

    async def work(s: Stores) -> str:
        session = await s.sessions.get(session_id, await s.owner(user))
        return export_markdown(session, await all_messages(s.journal, session.id))

    typer.echo(run(work))


@sessions_cli.command("export")
def export_session(
    session_id: str,
    user: UserOption = None,
    format: Annotated[str, typer.Option(help="json or md")] = "json",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: stdout)")
    ] = None,
) -> None:
    """Export a session as versioned JSON or Markdown."""
    if format not in ("json", "md"):
        raise typer.BadParameter("format must be json or md")

    async def work(s: Stores) -> str:
        session = await s.sessions.get(session_id, await s.owner(user))
        messages = await all_messages(s.journal, session.id)
        if format == "md":
            return export_markdown(session, messages)
        return json.dumps(export_json(session, messages), indent=2, ensure_ascii=False)

    text = run(work)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")


@sessions_cli.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    user: UserOption = None,
) -> None:
    """Import a Threadline export or a ChatGPT conversations.json (all or nothing)."""

    async def work(s: Stores) -> str:
        owner = await s.owner(user)
        size = file.stat().st_size
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar, file.open("rb") as f:
            task = bar.add_task("importing", total=size)
            sessions = _tracked(
                read_sessions(f, import_scope(owner)),
                lambda: bar.update(task, completed=f.tell()),
            )
            report = await import_sessions(s.db, owner, sessions, anon_ttl=s.sessions.anon_ttl)
        return (
            f"imported {report.sessions_created} new and {report.sessions_extended} existing "
            f"sessions: {report.messages_added} messages added, "
            f"{report.messages_skipped} already there"
        )

    typer.echo(run(work))


def _tracked(items: Any, tick: Callable[[], object]) -> Any:
    for item in items:
        tick()
        yield item


@sessions_cli.command("merge")
def merge(session_id: str, other_id: str, user: UserOption = None) -> None:
    """Merge OTHER_ID into SESSION_ID (messages ordered by time); OTHER_ID is removed."""

    async def work(s: Stores) -> str:
        merged = await merge_sessions(s.sessions, session_id, other_id, await s.owner(user))
        return f"merged into {merged.id}: {merged.message_count} messages"

    typer.echo(run(work))


@sessions_cli.command("cleanup")
def cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go")] = False,
) -> None:
    """Delete expired sessions (anonymous after their TTL, others after the retention)."""

    async def work(s: Stores) -> str:
        retention = s.sessions.retention
        if dry_run:
            expired = await find_expired(s.db, retention, limit=100_000)
            lines = [
                f"{e.id}  {'anonymous' if e.anonymous else 'user'}  {e.last_activity_at[:19]}"
                for e in expired
            ]
            return "\n".join([*lines, f"{len(expired)} sessions would be deleted"])
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("cleaning up", total=None)
            removed = await cleanup_expired(
                s.sessions,
                retention=retention,
                forget_memories=s.settings.cleanup_forgets_memories,
                progress=lambda n: bar.advance(task, n),
            )
        return f"deleted {removed} expired sessions"

    typer.echo(run(work))


@users_cli.command("create")
def create_user(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    display_name: Annotated[str | None, typer.Option("--name")] = None,
) -> None:
    """Create an account."""
    if len(password) < MIN_PASSWORD:
        raise typer.BadParameter(f"the password needs at least {MIN_PASSWORD} characters")

    async def work(s: Stores) -> str:
        user = await s.users.create(email, hash_password(password), display_name)
        return f"created {user.email} ({user.id})"

    typer.echo(run(work))


@users_cli.command("list")
def list_users(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every account."""

    async def work(s: Stores) -> list[dict[str, Any]]:
        return [user_out(u) for u in await s.users.list()]

    rows = run(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['id']}  {row['email']}  {row['display_name'] or ''}")
