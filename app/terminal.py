"""The terminal chat: the server's graph and storage, driven from stdin."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import typer

from app.services import Services, open_services
from app.settings import Settings
from graph.turn import Turn, prune_after_turn, run_turn
from memory.errors import ThreadlineError
from memory.sessions import Owner

# The terminal is one local anonymous owner, so its sessions can be resumed.
TERMINAL_OWNER = Owner(anon_token_hash=hashlib.sha256(b"threadline-terminal").hexdigest())


async def chat_loop(settings: Settings, url: str, session_id: str | None) -> None:
    services = await open_services(settings, url)
    try:
        session = await open_or_create(services, session_id)
        typer.echo(f"session {session.id}  (resume with: threadline chat --session {session.id})")
        history, _ = await services.journal.page(session.id, limit=20)
        for message in history:
            typer.echo(f"{message.role}> {message.content}")
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                return
            if text.strip() in {"/quit", "/exit"}:
                return
            if text.strip():
                await answer(services, session.id, text)
    finally:
        await services.close()


async def open_or_create(services: Services, session_id: str | None):  # type: ignore[no-untyped-def]
    if session_id:
        try:
            return await services.sessions.get(session_id, TERMINAL_OWNER)
        except ThreadlineError:
            raise typer.BadParameter(f"no session {session_id} for this terminal") from None
    return await services.sessions.create(TERMINAL_OWNER)


async def answer(services: Services, session_id: str, text: str) -> None:
    turn = Turn(session_id, None, False, {"id": str(uuid.uuid4()), "content": text})
    typer.echo("assistant> ", nl=False)
    try:
        async for event in run_turn(
            services.graph,
            services.db.pool,
            services.turn_context(),
            turn,
            durability=services.settings.durability,
        ):
            if event["type"] == "token":
                typer.echo(event["content"], nl=False)
        typer.echo("")
        keep = services.settings.checkpoints_keep
        await prune_after_turn(services.db.pool, session_id, keep=keep)
    except ThreadlineError as exc:
        typer.secho(f"\n[{exc.code}] {exc}", fg=typer.colors.RED)
