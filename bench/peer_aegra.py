"""Aegra for bench/peer: a venv of its own, and its server in a child process.

Aegra never goes into the project's venv: aegra-api brings its own langgraph,
langchain-core and FastAPI, and would move ours. Its venv lives outside the
repository (DEFAULT_VENV) and is made on first use from PyPI, with uv when
there is one (as the Makefile finds it), else with pip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.server import ChildServer

ROOT = Path(__file__).resolve().parent.parent
GRAPH_DIR = Path(__file__).resolve().parent / "peer_graph"  # aegra.json and graph.py
DEFAULT_VENV = Path.home() / ".cache" / "threadline" / "aegra-venv"
# aegra-api 0.6.0 uses SQLAlchemy's asyncio without asking for greenlet, which
# SQLAlchemy 2.1 no longer installs by itself: without it the server cannot start.
REQUIREMENTS = ("aegra-api==0.6.0", "greenlet")
VERSIONS_OF = ("aegra-api", "langgraph", "langgraph-checkpoint-postgres", "langchain-core")


def aegra_python(given: Path | None) -> Path:
    """The Python of a venv holding aegra-api: `given`, or the default one, made if missing."""
    if given is not None:
        if not imports_aegra(given):
            raise SystemExit(
                f"{given} cannot import aegra_api and greenlet: install {REQUIREMENTS}"
            )
        return given
    python = DEFAULT_VENV / "bin" / "python"
    if not imports_aegra(python):
        print(
            f"bench/peer: installing {', '.join(REQUIREMENTS)} from PyPI into {DEFAULT_VENV} "
            "(a venv of its own, not the project's; --aegra-python names another)",
            flush=True,
        )
        install(DEFAULT_VENV)
    return python


def imports_aegra(python: Path) -> bool:
    if not python.exists():
        return False
    probe = [str(python), "-c", "import aegra_api, greenlet"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def install(venv: Path) -> None:
    """A new venv at `venv` with REQUIREMENTS in it."""
    uv = shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv" / "uv" / "bin" / "uv"] if p.exists()), None
    )
    python = venv / "bin" / "python"
    if uv:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        install_with = [uv, "pip", "install", "--quiet", "--python", str(python)]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install_with = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*install_with, *REQUIREMENTS], check=True)


def versions(python: Path) -> dict[str, str]:
    """Versions of Aegra and of the LangGraph it runs, in its venv."""
    script = (
        "import json, importlib.metadata as m; "
        f"print(json.dumps({{n: m.version(n) for n in {list(VERSIONS_OF)!r}}}))"
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, check=True, text=True)
    found: dict[str, str] = json.loads(out.stdout)
    return found


class AegraServer(ChildServer):
    """`uvicorn aegra_api.main:app` (what `aegra serve` runs) on a free port, serving
    bench/peer_graph/aegra.json; Aegra migrates its database itself at start."""

    name = "Aegra"
    # Run from the graph's folder: Aegra takes an alembic.ini in its working
    # directory before its own, and the repository root has Threadline's.
    cwd = GRAPH_DIR

    def __init__(self, python: Path, database_url: str, log_path: Path, **env: str) -> None:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("POSTGRES_", "OPENAI_", "LANGSMITH_", "LANGCHAIN_"))
        }
        config = {"DATABASE_URL": database_url, "AEGRA_CONFIG": str(GRAPH_DIR / "aegra.json")}
        super().__init__(log_path, inherited | config | env)
        self.python = python

    def command(self) -> list[str]:
        command = [str(self.python), "-m", "uvicorn", "aegra_api.main:app"]
        return command + ["--host", "127.0.0.1", "--port", str(self.port)]
