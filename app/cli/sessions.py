"""`threadline sessions ...`: list, show, export, import, merge and clean up sessions.

Every command goes through the thread layer, so a merge or a cleanup waits for
nobody's lock by accident: a thread with a running turn answers busy.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from app.cli.runtime import fail, owner_of, run
from app.exports import export_json, export_markdown
from app.schemas import session_out
from app.settings import Settings
from threads.runtime import Runtime

sessions_cli = typer.Typer(help="List, show, export, import, merge and clean up sessions.")

UserOption = Annotated[
    str | None, typer.Option("--user", help="Owner's email (default: the terminal's own)")
]


@sessions_cli.command("list")
def list_sessions(
    user: UserOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    limit: Annotated[int, typer.Option(help="At most this many", min=1, max=10_000)] = 100,
) -> None:
    """Sessions of a user (or of the terminal), newest activity first."""

    async def work(rt: Runtime, _: Settings) -> list[dict[str, Any]]:
        owner = await owner_of(rt, user)
        found, _cursor = await rt.deps.sessions.list(owner, archived=None, limit=limit)
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

    async def work(rt: Runtime, _: Settings) -> str:
        session, messages = await rt.threads.export(session_id, await owner_of(rt, user))
        return export_markdown(session, messages)

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
        raise typer.BadParameter("must be json or md", param_hint="'--format'")

    async def work(rt: Runtime, _: Settings) -> str:
        session, messages = await rt.threads.export(session_id, await owner_of(rt, user))
        if format == "md":
            return export_markdown(session, messages)
        return json.dumps(export_json(session, messages), indent=2, ensure_ascii=False)

    text = run(work)
    if output is None:
        typer.echo(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror or exc}") from None


@sessions_cli.command("import")
def import_file(file: Path, user: UserOption = None) -> None:
    """Import a Threadline export or a ChatGPT conversations.json (all or nothing)."""
    try:
        f = file.open("rb")
        size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None

    async def work(rt: Runtime, _: Settings) -> str:
        owner = await owner_of(rt, user)
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("importing", total=size)
            report = await rt.threads.import_file(
                owner, f, progress=lambda: bar.update(task, completed=f.tell())
            )
        return (
            f"imported {report.sessions_created} new and {report.sessions_extended} existing "
            f"sessions: {report.messages_added} messages added, "
            f"{report.messages_skipped} already there"
        )

    with f:
        typer.echo(run(work))


@sessions_cli.command("merge")
def merge(session_id: str, other_id: str, user: UserOption = None) -> None:
    """Merge OTHER_ID into SESSION_ID (messages ordered by time); OTHER_ID is removed."""

    async def work(rt: Runtime, _: Settings) -> str:
        merged = await rt.threads.merge(session_id, other_id, await owner_of(rt, user))
        return f"merged into {merged.id}: {merged.message_count} messages"

    typer.echo(run(work))


@sessions_cli.command("cleanup")
def cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go")] = False,
) -> None:
    """Delete expired sessions (anonymous after their TTL, others after the retention);
    a session whose turn is running is left for the next cleanup."""

    async def work(rt: Runtime, _: Settings) -> str:
        if dry_run:
            expired = await rt.threads.find_expired(limit=100_000)
            lines = [
                f"{e.id}  {'anonymous' if e.anonymous else 'user'}  {e.last_activity_at[:19]}"
                for e in expired
            ]
            return "\n".join([*lines, f"{len(expired)} sessions would be deleted"])
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task("cleaning up", total=None)
            removed = await rt.threads.expire(progress=lambda n: bar.advance(task, n))
        return f"deleted {removed} expired sessions"

    typer.echo(run(work))
