"""`threadline users ...`: create and list accounts."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from app.auth import check_new_password, hash_password
from app.cli.runtime import run
from app.schemas import user_out
from app.settings import Settings
from threads.runtime import Runtime

users_cli = typer.Typer(help="Create and list accounts.")


@users_cli.command("create")
def create_user(
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    display_name: Annotated[str | None, typer.Option("--name")] = None,
) -> None:
    """Create an account."""
    try:
        check_new_password(password)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def work(rt: Runtime, _: Settings) -> str:
        user = await rt.users.create(email, hash_password(password), display_name)
        return f"created {user.email} ({user.id})"

    typer.echo(run(work))


@users_cli.command("list")
def list_users(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every account."""

    async def work(rt: Runtime, _: Settings) -> list[dict[str, Any]]:
        return [user_out(u) for u in await rt.users.list()]

    rows = run(work)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['id']}  {row['email']}  {row['display_name'] or ''}")
