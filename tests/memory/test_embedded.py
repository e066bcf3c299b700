"""The embedded PostgreSQL: real processes, real data directories."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from memory.embedded import DataDirectoryInUse, EmbeddedPostgres
from memory.schema import migrate_sync
from tests.support.server import ROOT

START_IN_CHILD = """
import sys, time
from pathlib import Path
from memory.embedded import EmbeddedPostgres
server = EmbeddedPostgres(Path(sys.argv[1]))
print(server.start(), flush=True)
time.sleep(600)
"""


def postmasters(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_start_migrate_search_and_stop(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        assert "host=" in url and "5432" not in url  # a unix socket, not a TCP port
        migrate_sync(url)
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("18")
            assert conn.execute("SHOW server_encoding").fetchone()[0] == "UTF8"
            conn.execute("CREATE TABLE notes (body text)")
            conn.execute("INSERT INTO notes VALUES ('서울에 살아요'), ('東京で働いています')")
            hits = conn.execute("SELECT body FROM notes WHERE body ILIKE '%서울%'").fetchall()
            assert hits == [("서울에 살아요",)]
            conn.commit()
    finally:
        server.stop()
    assert postmasters(server.pgdata) == []
    again = EmbeddedPostgres(data_dir)  # the data stays for the next run
    try:
        with psycopg.connect(again.start()) as conn:
            assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,)
    finally:
        again.stop()


def start_child(data_dir: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", START_IN_CHILD, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    ready = child.stdout.readline()
    child.stdout.close()  # it prints nothing more
    assert ready.startswith("postgresql://")
    return child


def test_a_second_process_on_the_same_directory_is_refused(data_dir: Path) -> None:
    child = start_child(data_dir)
    try:
        with pytest.raises(DataDirectoryInUse, match=f"pid {child.pid}"):
            EmbeddedPostgres(data_dir).start()
    finally:
        child.terminate()
        child.wait(10)
        EmbeddedPostgres(data_dir).__enter__().stop()  # leave nothing running


def test_recovers_after_its_owner_is_killed(data_dir: Path) -> None:
    child = start_child(data_dir)
    with psycopg.connect(f"{_url(data_dir)}", autocommit=True) as conn:
        conn.execute("CREATE TABLE survivors (n int)")
        conn.execute("INSERT INTO survivors VALUES (1)")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    assert postmasters(data_dir / "pgdata"), "the postmaster outlives its killed owner"
    server = EmbeddedPostgres(data_dir)
    try:
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("SELECT n FROM survivors").fetchall() == [(1,)]
    finally:
        server.stop()
    deadline = time.monotonic() + 10
    while postmasters(data_dir / "pgdata") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postmasters(data_dir / "pgdata") == []


def _url(data_dir: Path) -> str:
    return f"postgresql://postgres@/threadline?host={data_dir / 'pgdata'}"
