"""Aegra for bench/peer: a venv of its own, and its server in a child process.

Aegra never goes into the project's venv: aegra-api brings its own langgraph,
langchain-core and FastAPI, and would move ours; and aegra-api 0.11 needs
Python 3.12 or newer, where the project runs on 3.11. Its venv lives outside
the repository (DEFAULT_VENV), made on first use from PyPI with a Python 3.12
found on the machine (on PATH, or one pyenv installed), and uv when there is
one (as the Makefile finds it), else pip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.server import ChildServer

ROOT = Path(__file__).resolve().parent.parent
GRAPH_DIR = Path(__file__).resolve().parent / "peer_graph"  # aegra.json and graph.py
DEFAULT_VENV = Path.home() / ".cache" / "threadline" / "aegra-0.11-venv"
# The newest 0.11.x when the venv is made; the report names the one installed.
# (0.6.0 needed greenlet listed beside it; 0.11 asks for it itself.)
REQUIREMENTS = ("aegra-api~=0.11.0",)
PYTHON_MINOR = "3.12"  # the oldest Python aegra-api 0.11 installs on
VERSIONS_OF = ("aegra-api", "langgraph", "langgraph-checkpoint-postgres", "langchain-core")
# Aegra's pools are left at its defaults (SQLAlchemy 10 + 20 overflow, LangGraph
# 5 to 20): enough for 50 concurrent runs, and what an operator gets.


def aegra_python(given: Path | None) -> Path:
    """The Python of a venv holding aegra-api: `given`, or the default one, made if missing."""
    if given is not None:
        if not imports_aegra(given):
            raise SystemExit(f"{given} cannot import aegra_api: install {REQUIREMENTS}")
        return given
    python = DEFAULT_VENV / "bin" / "python"
    if not imports_aegra(python):
        base = base_python()
        print(
            f"bench/peer: installing {', '.join(REQUIREMENTS)} from PyPI into {DEFAULT_VENV} "
            f"with {base} (a venv of its own, not the project's; --aegra-python names another)",
            flush=True,
        )
        install(base, DEFAULT_VENV)
    return python


def imports_aegra(python: Path) -> bool:
    if not python.exists():
        return False
    probe = [str(python), "-c", "import aegra_api"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def base_python() -> Path:
    """A Python PYTHON_MINOR to make the venv with: on PATH, else one pyenv installed
    (pyenv's shim on PATH answers only for the version pyenv has selected)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = shutil.which(f"python{PYTHON_MINOR}")
    candidates = [Path(found)] if found else []
    candidates += sorted(pyenv.glob(f"{PYTHON_MINOR}.*/bin/python"), reverse=True)
    for python in candidates:
        probe = [str(python), "-c", "import sys; print(sys.executable)"]
        ran = subprocess.run(probe, capture_output=True, text=True, check=False)
        if ran.returncode == 0:
            return Path(ran.stdout.strip())
    raise SystemExit(
        f"bench/peer: aegra-api 0.11 needs Python {PYTHON_MINOR}, and none was found on PATH "
        f"or under {pyenv}; install one, or name a venv with aegra-api in --aegra-python"
    )


def install(base: Path, venv: Path) -> None:
    """A new venv at `venv`, made by the Python `base`, with REQUIREMENTS in it."""
    uv = shutil.which("uv") or next(
        (str(p) for p in [ROOT / ".venv" / "uv" / "bin" / "uv"] if p.exists()), None
    )
    python = venv / "bin" / "python"
    if uv:
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
        install_with = [uv, "pip", "install", "--quiet", "--python", str(python)]
    else:
        subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
        install_with = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*install_with, *REQUIREMENTS], check=True)


def versions(python: Path) -> dict[str, str]:
    """Versions of Aegra, of the LangGraph it runs and of its Python, in its venv."""
    script = (
        "import json, platform, importlib.metadata as m; "
        f"found = {{n: m.version(n) for n in {list(VERSIONS_OF)!r}}}; "
        "found['Python'] = platform.python_version(); print(json.dumps(found))"
    )
    out = subprocess.run([str(python), "-c", script], capture_output=True, check=True, text=True)
    found: dict[str, str] = json.loads(out.stdout)
    return found


class AegraServer(ChildServer):
    """`uvicorn aegra_api.main:app` (what `aegra serve` runs) on a free port, serving
    bench/peer_graph/aegra.json; Aegra migrates its database itself at start."""

    name = "Aegra"
    # Run from the graph's folder, where aegra.json names its graph. (Aegra 0.6
    # also took an alembic.ini in its working directory before its own, and the
    # repository root has Threadline's; 0.11 only reads the one it ships.)
    cwd = GRAPH_DIR

    def __init__(self, python: Path, database_url: str, log_path: Path, **env: str) -> None:
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("POSTGRES_", "OPENAI_", "LANGSMITH_", "LANGCHAIN_", "REDIS_"))
        }
        config = {"DATABASE_URL": database_url, "AEGRA_CONFIG": str(GRAPH_DIR / "aegra.json")}
        super().__init__(log_path, inherited | config | env)
        self.python = python

    def command(self) -> list[str]:
        command = [str(self.python), "-m", "uvicorn", "aegra_api.main:app"]
        return command + ["--host", "127.0.0.1", "--port", str(self.port)]
