"""A PgBouncer in transaction pooling mode, started by a test (or a benchmark) in
front of the PostgreSQL it is given, on a free port (Debian's `pgbouncer`)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.server import free_port

CONFIG = """[databases]
* = host={host} port={port} user={user} {password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
max_client_conn = 2000
default_pool_size = {pool_size}
reserve_pool_size = 0
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")


class PgBouncer:
    """Start and stop a PgBouncer; `url_for` leads a database URL through it."""

    def __init__(self, server_url: str, *, pool_size: int = 20) -> None:
        binary = pgbouncer_binary()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.binary = binary
        self.server = make_url(server_url)
        self.port = free_port()
        self.pool_size = pool_size
        # Its own directory, readable by the user it runs as (it refuses root).
        self.directory = Path(tempfile.mkdtemp(prefix="pgbouncer_"))
        self.directory.chmod(0o777)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "pgbouncer.log"

    def url_for(self, database_url: str) -> str:
        """`database_url`, through this PgBouncer."""
        through = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return through.render_as_string(hide_password=False)

    def start(self, timeout: float = 15) -> None:
        password = self.server.password
        config = self.directory / "pgbouncer.ini"
        config.write_text(
            CONFIG.format(
                host=self.server.host or "127.0.0.1",
                port=self.server.port or 5432,
                user=self.server.username or "postgres",
                password=f"password={password}" if password else "",
                listen_port=self.port,
                pool_size=self.pool_size,
                directory=self.directory,
            )
        )
        config.chmod(0o644)
        args = [self.binary, str(config)]
        if os.geteuid() == 0:
            args[1:1] = ["-u", _unprivileged_user()]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited early; see {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("pgbouncer refuses to run as root and no other user exists")
