"""A real `threadline serve` in a child process, on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildServer:
    """An HTTP server in a child process on a free port: started (until its health
    URL answers 200), SIGKILLed, stopped; its output goes to `log_path`."""

    name = "server"
    health_path = "/health"
    cwd: Path = ROOT

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The child's process id, once started."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self.proc.pid

    def start(self, timeout: float = 90) -> None:
        """Start it and wait until its health URL answers 200 (or it exits). The
        bound is generous: on a loaded 2-core machine, importing and migrating
        alone took 30 s when two servers started at once."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.cwd, env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            try:
                if httpx.get(self.url + self.health_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become healthy; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait: the graceful path."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


class ServerProcess(ChildServer):
    """A `threadline serve` of the tests: start, stop, SIGKILL and restart it."""

    health_path = "/api/health"

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        super().__init__(log_path, {})
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "THREADLINE_PORT": str(self.port),
            "THREADLINE_RATE_LIMITS": "off",
            # A test server never expires rows behind another test's back (a shared
            # server's pass every 600 s once deleted a row a CLI test had just made);
            # the tests of periodic cleanup turn it on.
            "THREADLINE_CLEANUP_INTERVAL_S": "0",
            **env,
        }
        for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            if key not in env:
                self.env.pop(key, None)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "app", "serve"]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"
