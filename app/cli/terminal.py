"""The terminal chat: a thread driven from stdin, through the same door as a socket.

Each line is a turn submitted to the thread layer (so it takes the thread's
lock like any other turn); its events are read from the thread's watcher.
"""

from __future__ import annotations

import asyncio
import re
import uuid

import typer

from app.cli.runtime import owner_of
from app.settings import Settings
from memory.errors import SessionNotFound, ThreadlineError
from memory.models import ChatSession
from memory.sessions import Owner
from threads.operations import Threads
from threads.runtime import Runtime

HELP = """/retry  ask the last question again, when it went unanswered
/quit   leave (or /exit, or Ctrl-D); the session stays, to resume
/help   this list
Anything else is a question."""
_COMMAND = re.compile(r"/\w+")  # "/hlep"; "/etc/hosts is what?" is a question


async def chat_loop(
    rt: Runtime, settings: Settings, session_id: str | None, email: str | None
) -> None:
    threads, owner = rt.threads, await owner_of(rt, email)
    session = await open_or_create(threads, owner, session_id, email)
    typer.echo(f"session {session.id}  ({keeping(session.id, email, settings)})")
    history, _ = await threads.deps.journal.page(session.id, limit=20)
    for message in history:
        typer.echo(f"{message.role}> {message.content}")
    unanswered = history[-1] if history and history[-1].role == "user" else None
    if unanswered is not None and not await threads.is_running(session.id):
        typer.echo("(not answered: its turn failed or was cut off; /retry asks it again)")
    watcher = threads.watch(session)
    try:
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo("")
                return
            command = text.strip()
            if command in {"/quit", "/exit"}:
                return
            if command == "/help":
                typer.echo(HELP)
            elif command == "/retry" and unanswered is None:
                typer.echo("(nothing to retry: the last question has its answer)")
            elif command == "/retry" and unanswered is not None:
                # The same id: the thread runs it only if it still has no answer.
                typer.echo(f"you> {unanswered.content}")
                await answer(
                    threads,
                    owner,
                    session,
                    watcher.queue,
                    unanswered.content,
                    query_id=unanswered.id,
                )
                unanswered = None
            elif _COMMAND.fullmatch(command):  # a typo of one, not a question
                typer.echo(f"(no command {command}; /help lists them)")
            elif command:
                await answer(threads, owner, session, watcher.queue, text)
    finally:
        threads.unwatch(watcher)


async def open_or_create(
    threads: Threads, owner: Owner, session_id: str | None, email: str | None
) -> ChatSession:
    if session_id:
        try:
            return await threads.open(session_id, owner)
        except SessionNotFound:
            whose = email or "this terminal (or it expired)"
            raise SessionNotFound(f"no session {session_id} of {whose}") from None
    return await threads.deps.sessions.create(owner)


def keeping(session_id: str, email: str | None, settings: Settings) -> str:
    """How long the session is kept, and how to resume it: a terminal session is
    anonymous, so it goes after the anonymous TTL of inactivity."""
    if email is not None:
        resume = f"resume with: threadline chat --user {email} --session {session_id}"
        if settings.retention_days:
            return f"deleted {settings.retention_days:g} days after its last message; {resume}"
        return resume
    hours = f"{settings.anon_ttl_hours:g}"
    return (
        f"a visitor's session, deleted {hours} h after its last message; resume before "
        f"then with: threadline chat --session {session_id}, or chat with --user EMAIL "
        "to keep your threads"
    )


async def answer(
    threads: Threads,
    owner: Owner,
    session: ChatSession,
    events: asyncio.Queue[dict[str, object]],
    text: str,
    query_id: str | None = None,
) -> None:
    """Run one turn and print its answer as it streams."""
    query_id = query_id or str(uuid.uuid4())
    typer.echo("assistant> ", nl=False)
    try:
        session = await threads.open(session.id, owner)
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
