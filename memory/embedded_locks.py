"""The file locks that let several processes share one embedded cluster.

In the data directory:
- `cluster.lock`: held for a moment, while a process decides to start, join, leave
  or stop the cluster, so those decisions never interleave.
- `users.lock`: held shared by every process that uses the cluster, for as long as
  it does. Who can take it exclusively (under `cluster.lock`) knows that nobody
  else uses the cluster: the first one in starts it, the last one out stops it.
- `server.lock`: the one `threadline serve` of the data directory, with its pid.

flock, not pid files: the kernel drops a lock when its holder dies, however it
dies. Python opens files close-on-exec, so the postmaster never inherits one.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class LockTimeout(Exception):
    """Another process held the lock for longer than we wait."""


def _try(handle: IO[str], operation: int) -> bool:
    try:
        fcntl.flock(handle, operation | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def deciding(data_dir: Path, timeout_s: float) -> Iterator[None]:
    """Hold `cluster.lock`, waiting up to `timeout_s` for a start or stop elsewhere."""
    with (data_dir / "cluster.lock").open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while not _try(handle, fcntl.LOCK_EX):
            if time.monotonic() > deadline:
                raise LockTimeout(f"another process kept {handle.name} for {timeout_s:.0f} s")
            time.sleep(0.05)
        yield  # closing the file releases the lock


class ClusterUse:
    """This process's share of the cluster: a shared lock on `users.lock`.
    Join and leave only inside `deciding`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "users.lock"
        self._handle: IO[str] | None = None

    def join(self) -> bool:
        """Take our share; True when nobody else used the cluster."""
        handle = self.path.open("a")
        alone = _try(handle, fcntl.LOCK_EX)
        # Under `deciding` nobody else locks it exclusively, so this cannot fail or race.
        if not _try(handle, fcntl.LOCK_SH):
            handle.close()
            raise LockTimeout(f"cannot share {self.path}")
        self._handle = handle
        return alone

    def leave(self) -> bool:
        """Drop our share; True when nobody else uses the cluster now."""
        self.drop()
        with self.path.open("a") as probe:
            return _try(probe, fcntl.LOCK_EX)

    def drop(self) -> None:
        """Drop our share, asking nothing."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def joined(self) -> bool:
        return self._handle is not None


class ServerLock:
    """`server.lock`: taken by one process at a time, which writes its pid there."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "server.lock"
        self._handle: IO[str] | None = None

    def take(self) -> str | None:
        """Take it; else the pid written by the process that holds it ("unknown")."""
        handle = self.path.open("a+")
        if not _try(handle, fcntl.LOCK_EX):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            return holder
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return None

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
