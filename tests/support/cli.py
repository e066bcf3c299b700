"""Running the `threadline` command as a user would, in a child process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.server import ROOT

BOX_DRAWING = "╭╮╰╯│─"  # what Typer/Rich draw around errors and tracebacks


def cli_env(**env: str) -> dict[str, str]:
    """The test's environment without a real model's settings, plus `env`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    environment.update(env)
    return environment


def threadline(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=cli_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """What docs/operations.md promises of a failed command: a non-zero exit and one
    line `error: ...` on stderr; no traceback, no box. Returns that line."""
    shown = f"exit {result.returncode}\nstderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    assert result.returncode != 0, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    assert not set(BOX_DRAWING) & set(result.stderr + result.stdout), shown
    return lines[0]
