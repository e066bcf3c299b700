"""`threadline memories ...`: the embeddings behind recall by meaning."""

from __future__ import annotations

import sys

import typer
from rich.progress import Progress

from app.cli.runtime import run
from app.settings import Settings
from threads.runtime import Runtime

memories_cli = typer.Typer(help="The embeddings behind recall by meaning.")


@memories_cli.command("reembed")
def reembed() -> None:
    """Embed every memory owed an embedding (new ones, edited ones, or all of
    them after a change of THREADLINE_EMBEDDINGS or its model), with progress.
    The server does the same in the background at start."""

    async def work(rt: Runtime, _: Settings) -> str:
        vectors = rt.vectors
        if vectors is None or not vectors.on:
            return "recall is by full text here (no embedder, or no pgvector): nothing to embed"
        owed = await vectors.owed()
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task(f"embedding with {vectors.model}", total=owed)
            done = await vectors.backfill(lambda n: bar.advance(task, n))
        return f"embedded {done} memories with {vectors.model}"

    typer.echo(run(work))


@memories_cli.command("mode")
def mode() -> None:
    """How memories are recalled here: `hybrid` or `full_text`."""

    async def work(rt: Runtime, _: Settings) -> str:
        vectors = rt.vectors
        return vectors.mode if vectors is not None else "full_text"

    typer.echo(run(work))
