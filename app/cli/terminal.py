"""The terminal chat: a thread driven from stdin, through the same door as a socket.

Each line is a turn submitted to the thread layer (so it takes the thread's
lock like any other turn); its events are read from the thread's watcher.
"""

from __future__ import annotations

import asyncio
import uuid

import typer

from app.cli.owner import TERMINAL_OWNER
from memory.errors import SessionNotFound, ThreadlineError
from memory.models import ChatSession
from threads.operations import Threads


async def chat_loop(threads: Threads, session_id: str | None) -> None:
    session = await open_or_create(threads, session_id)
    typer.echo(f"session {session.id}  (resume with: threadline chat --session {session.id})")
    history, _ = await threads.deps.journal.page(session.id, limit=20)
    for message in history:
        typer.echo(f"{message.role}> {message.content}")
    watcher = threads.watch(session)
    try:
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                return
            if text.strip() in {"/quit", "/exit"}:
                return
            if text.strip():
                await answer(threads, session, watcher.queue, text)
    finally:
        threads.unwatch(watcher)


async def open_or_create(threads: Threads, session_id: str | None) -> ChatSession:
    if session_id:
        try:
            return await threads.open(session_id, TERMINAL_OWNER)
        except SessionNotFound:
            raise typer.BadParameter(f"no session {session_id} for this terminal") from None
    return await threads.deps.sessions.create(TERMINAL_OWNER)


async def answer(
    threads: Threads, session: ChatSession, events: asyncio.Queue[dict[str, object]], text: str
) -> None:
    """Run one turn and print its answer as it streams."""
    query_id = str(uuid.uuid4())
    typer.echo("assistant> ", nl=False)
    try:
        session = await threads.open(session.id, TERMINAL_OWNER)
        replayed = await threads.ask(session, {"id": query_id, "content": text})
    except ThreadlineError as exc:
        typer.secho(f"\n[{exc.code}] {exc}", fg=typer.colors.RED)
        return
    for frame in replayed:
        events.put_nowait(frame)
    while True:
        event = await events.get()
        if event["type"] == "token":
            typer.echo(str(event["content"]), nl=False)
        elif event["type"] == "done":
            typer.echo("")
            return
        elif event["type"] == "error" and event.get("id") == query_id:
            typer.secho(f"\n[{event['code']}] {event['message']}", fg=typer.colors.RED)
            return
