"""`threadline users ...`: create and list accounts."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from app.auth import hash_password, new_token, token_hash
from app.cli.runtime import UnknownUser, fail, run
from app.routes.auth import Registration
from app.schemas import user_out
from app.settings import Settings
from threads.runtime import Runtime

users_cli = typer.Typer(help="Create and list accounts, and their API keys.")
api_key_cli = typer.Typer(help="Personal API keys (x-api-key) of an account.")
users_cli.add_typer(api_key_cli, name="api-key")


@users_cli.command("create")
def create_user(
    email: str,
    password: Annotated[
        str | None, typer.Option(help="Asked for when not given (in a terminal only)")
    ] = None,
    display_name: Annotated[str | None, typer.Option("--name")] = None,
) -> None:
    """Create an account (the same rules as registering over REST)."""
    if password is None:
        if not sys.stdin.isatty():
            raise fail("no password: give --password PW, or run in a terminal to be asked")
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        account = Registration(email=email, password=password, display_name=display_name)
    except ValidationError as exc:
        raise fail(f"invalid_input: {refusal(exc)}") from None

    async def work(rt: Runtime, _: Settings) -> str:
        password_hash = hash_password(account.password)
        user = await rt.users.create(account.email, password_hash, account.display_name or None)
        return f"created {user.email} ({user.id})"

    typer.echo(run(work))


def refusal(exc: ValidationError) -> str:
    """What REST's 422 says, in the CLI's words: `email: not an email address`."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if field == "display_name":
            field = "--name"
        if error["type"] == "string_pattern_mismatch":
            message = "not an email address"
        else:  # our validators' ValueError text, without pydantic's "Value error, "
            message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{field}: {message}")
    return "; ".join(problems)


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


async def account_id(rt: Runtime, email: str) -> str:
    user = await rt.users.by_email(email)
    if user is None:
        raise UnknownUser(f"no user with email {email}")
    return user.id


@api_key_cli.command("create")
def create_api_key(
    email: str, name: Annotated[str, typer.Option("--name", help="What the key is for")]
) -> None:
    """Make a key for EMAIL's account; the key is printed once (only its hash is kept)."""

    async def work(rt: Runtime, _: Settings) -> str:
        key = "tl_" + new_token()
        made = await rt.users.api_keys.create(
            await account_id(rt, email), name, token_hash(key), key[:10]
        )
        return f"{key}\n(key {made.id} “{made.name}”: shown once, keep it now)"

    typer.echo(run(work))


@api_key_cli.command("list")
def list_api_keys(email: str) -> None:
    """EMAIL's live keys: id, name, prefix, last use."""

    async def work(rt: Runtime, _: Settings) -> list[dict[str, Any]]:
        return [k.as_dict() for k in await rt.users.api_keys.list(await account_id(rt, email))]

    for key in run(work):
        used = key["last_used_at"] or "never"
        typer.echo(f"{key['id']}  {key['name']}  {key['prefix']}…  last used {used}")


@api_key_cli.command("revoke")
def revoke_api_key(email: str, key_id: str) -> None:
    """Revoke one of EMAIL's keys: it proves nothing from the next request on."""

    async def work(rt: Runtime, _: Settings) -> str:
        await rt.users.api_keys.revoke(await account_id(rt, email), key_id)
        return f"revoked {key_id}"

    typer.echo(run(work))
