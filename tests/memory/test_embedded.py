"""The embedded PostgreSQL: real processes, real data directories, no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from memory.embedded import DataDirectoryInUse, EmbeddedPostgres
from tests.support.server import ROOT

# A child that owns the data directory until it is killed.
START_AND_WAIT = """
import sys, time
from pathlib import Path
from memory.embedded import EmbeddedPostgres
print(EmbeddedPostgres(Path(sys.argv[1])).start(), flush=True)
time.sleep(600)
"""

# A second server: prints what start() raised, or "started" if it wrongly succeeded.
START_SECOND_SERVER = """
import sys
from pathlib import Path
from memory.embedded import EmbeddedPostgres
try:
    EmbeddedPostgres(Path(sys.argv[1]), server=True).start()
except Exception as exc:
    print(type(exc).__name__, exc)
    sys.exit(3)
print("started")
"""

# A CLI command beside whoever runs the cluster: joins, writes, leaves.
JOIN_WRITE_LEAVE = """
import sys
from pathlib import Path
import psycopg
from memory.embedded import EmbeddedPostgres
server = EmbeddedPostgres(Path(sys.argv[1]))
with psycopg.connect(server.start(), autocommit=True) as conn:
    conn.execute("INSERT INTO notes VALUES ('from the child')")
    print(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0], flush=True)
server.stop()
"""


def postmasters(pgdata: Path) -> list[psutil.Process]:
    """Live postgres processes whose command line names this pgdata (zombies have none)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def assert_no_postmaster(pgdata: Path) -> None:
    # pg_ctl -w returns once the pid file is gone; the process exits a moment later.
    deadline = time.monotonic() + 10
    while postmasters(pgdata) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert postmasters(pgdata) == []


def run_child(script: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # A missing nested directory: start() creates it with its parents.
    path = tmp_path_factory.mktemp("embedded") / "nested" / "data"
    yield path
    for proc in postmasters(path / "pgdata"):  # only if a test failed half-way
        proc.kill()


def test_start_serves_postgres_18_on_a_socket_and_stop_ends_it(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir) as server:
        url = server.url
        assert url is not None
        assert url == f"postgresql://postgres@/threadline?host={server.pgdata}"
        with psycopg.connect(url) as conn:
            (version,) = conn.execute("SHOW server_version").fetchall()[0]
            assert str(version).startswith("18")
            assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)  # no TCP
            assert conn.execute(
                "SELECT datlocprovider, datlocale FROM pg_database WHERE datname = 'threadline'"
            ).fetchone() == ("b", "C.UTF-8")
        assert len(postmasters(server.pgdata)) == 1
    assert_no_postmaster(server.pgdata)
    server.stop()  # idempotent


def test_a_restart_reuses_the_data(data_dir: Path) -> None:
    first = EmbeddedPostgres(data_dir)
    with psycopg.connect(first.start()) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('서울에 살아요')")
        conn.commit()
    first.stop()
    version_file = data_dir / "pgdata" / "PG_VERSION"
    initdb_time = version_file.stat().st_mtime_ns
    second = EmbeddedPostgres(data_dir)
    try:
        with psycopg.connect(second.start()) as conn:
            assert conn.execute("SELECT body FROM notes").fetchall() == [("서울에 살아요",)]
    finally:
        second.stop()
    assert version_file.stat().st_mtime_ns == initdb_time  # no second initdb
    assert_no_postmaster(second.pgdata)


def test_a_second_server_on_the_same_directory_is_refused(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir, server=True) as server:
        assert (data_dir / "server.lock").read_text().strip() == str(os.getpid())
        child = run_child(START_SECOND_SERVER, data_dir)
        assert child.returncode == 3, child.stdout + child.stderr
        assert child.stdout.startswith(DataDirectoryInUse.__name__)
        assert str(data_dir) in child.stdout
        assert f"pid {os.getpid()}" in child.stdout
        assert "\n" not in child.stdout.strip()  # one line for the operator
        # In this process too: a second server handle is refused; the first keeps serving.
        with pytest.raises(DataDirectoryInUse, match=f"pid {os.getpid()}"):
            EmbeddedPostgres(data_dir, server=True).start()
        assert server.url is not None
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with EmbeddedPostgres(data_dir, server=True):  # released by stop()
        pass
    assert_no_postmaster(data_dir / "pgdata")


def test_other_processes_join_the_cluster_and_the_last_one_out_stops_it(
    data_dir: Path,
) -> None:
    first = EmbeddedPostgres(data_dir, server=True)
    with psycopg.connect(first.start(), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    # A CLI command beside the server: joins the same postmaster, leaves it running.
    child = run_child(JOIN_WRITE_LEAVE, data_dir)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == str(started[0] if started else None)
    assert len(postmasters(first.pgdata)) == 1
    # The reverse: a process that joined outlives the one that started the cluster.
    second = EmbeddedPostgres(data_dir)
    url = second.start()
    first.stop()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("from the child",)]
    second.stop()
    assert_no_postmaster(first.pgdata)


def test_recovers_after_its_owner_is_killed(data_dir: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", START_AND_WAIT, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert owner.stdout is not None
        url = owner.stdout.readline().strip()
        assert url.startswith("postgresql://"), url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE survivors (n int)")
            conn.execute("INSERT INTO survivors VALUES (1)")
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()
    pgdata = data_dir / "pgdata"
    (orphan,) = postmasters(pgdata)  # the postmaster outlives its killed owner
    assert str(owner.pid) in (pgdata / ".handle_pids.json").read_text()  # stale bookkeeping

    server = EmbeddedPostgres(data_dir)
    try:
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("SELECT n FROM survivors").fetchall() == [(1,)]
        # Restarted, not adopted (see start()); a stopped orphan may linger as a zombie.
        assert orphan.pid not in {proc.pid for proc in postmasters(pgdata)}
    finally:
        server.stop()
    assert_no_postmaster(pgdata)
    assert not (pgdata / ".handle_pids.json").exists()
