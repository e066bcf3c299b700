"""Reading an import file without slowing the server down.

Reading a file is Python CPU work (parsing, checking every field). In a worker
thread of the server's own process it still competes with the event loop for
the GIL, and the loop loses: after each of its many system calls it waits for
the reader to give the GIL back. Measured on a 2-core machine: `/api/health`
took 0.4 to 1.3 s, again and again, while a 30 MB ChatGPT export was read in a
thread.

So a file larger than IN_THREAD_BYTES is read in a child process: forked from
multiprocessing's fork server, which has the reader loaded (so a child starts in
milliseconds; the fork server itself starts with the first large import). The
child gets the file through one pipe, a chunk at a time, and sends the parts it
reads back through another (as the thread would have yielded them: at most
BATCH messages each, so memory stays bounded on both sides); the writes stay in
the server, in one transaction. A smaller file is read in a worker thread: it
holds the GIL for a few milliseconds in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import traceback
from collections.abc import AsyncGenerator, Iterator
from multiprocessing.connection import Connection
from typing import IO, Any, TypeVar

from memory.import_reading import read_sessions
from memory.session_format import ImportedSession, ImportLimits, UnreadableImport

T = TypeVar("T")

IN_THREAD_BYTES = 2**20  # files up to this size are read in a worker thread
CHUNK_BYTES = 2**16  # the file goes to the child in chunks of this size
_END: Any = object()

_processes = multiprocessing.get_context("forkserver")
_processes.set_forkserver_preload(["threads.import_reader"])


def read_parts(
    file: IO[bytes], scope: str, limits: ImportLimits
) -> AsyncGenerator[ImportedSession, None]:
    """The sessions of `file` (see memory.import_reading.read_sessions), read in a
    worker thread or, for a large file, in a child process. Close the iterator
    (contextlib.aclosing) to stop a reader that is no longer wanted."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    if size <= IN_THREAD_BYTES:
        return in_worker(read_sessions(file, scope, limits))
    return in_child_process(file, scope, limits)


async def in_worker(items: Iterator[T]) -> AsyncGenerator[T, None]:
    """Each item made in a worker thread, so making it never blocks the event loop.

    Cancelled, it waits for the item being made: `items` (and the file it reads)
    is never closed under a thread that still reads it.
    """
    while True:
        making = asyncio.ensure_future(asyncio.to_thread(next, items, _END))
        try:
            item: T = await asyncio.shield(making)
        except asyncio.CancelledError:
            await asyncio.wait([making])
            raise
        if item is _END:
            return
        yield item


async def in_child_process(
    file: IO[bytes], scope: str, limits: ImportLimits
) -> AsyncGenerator[ImportedSession, None]:
    """`read_sessions` run by a child process; its refusal (UnreadableImport) is
    raised here. The child is stopped when the parts are no longer wanted, and
    the file is not read any more once this returns."""
    file_out, file_in = _processes.Pipe(duplex=False)  # (receiving end, sending end)
    parts_out, parts_in = _processes.Pipe(duplex=False)
    child = _processes.Process(
        target=_read_in_child,
        args=(file_out, parts_in, scope, limits),
        name="threadline-import-reader",
        daemon=True,
    )
    await asyncio.to_thread(child.start)  # the first one starts the fork server
    file_out.close()
    parts_in.close()
    feeding = asyncio.ensure_future(asyncio.to_thread(_feed, file, file_in))
    try:
        while True:
            kind, value = await asyncio.shield(asyncio.to_thread(_receive, parts_out))
            if kind == "part":
                yield value
            elif kind == "end":
                return
            elif kind == "refused":
                raise UnreadableImport(value)
            else:
                raise RuntimeError(f"the import reader failed: {value}")
    finally:
        if child.is_alive():
            child.kill()  # the parts are not wanted (any more): stop reading
        await asyncio.wait([feeding])  # it stops at a closed pipe; then the file is free
        await asyncio.to_thread(child.join, 5)
        file_in.close()
        parts_out.close()


def _feed(file: IO[bytes], to_child: Connection) -> None:
    """Send the file, chunk by chunk, then an empty chunk for its end."""
    with contextlib.suppress(OSError):  # the child stopped: it has read what it needed
        while chunk := file.read(CHUNK_BYTES):
            to_child.send_bytes(chunk)
        to_child.send_bytes(b"")


def _receive(parts: Connection) -> tuple[str, Any]:
    try:
        received: tuple[str, Any] = parts.recv()
    except (EOFError, OSError):
        return "failed", "it stopped before the end of the file"
    return received


# In the child process


class _Received:
    """The file as the pipe brings it: a binary stream with `read(size)`."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.buffer = bytearray()
        self.ended = False

    def read(self, size: int = -1) -> bytes:
        while not self.ended and (size < 0 or len(self.buffer) < size):
            chunk = self.pipe.recv_bytes()
            self.ended = not chunk
            self.buffer += chunk
        taken = len(self.buffer) if size < 0 else min(size, len(self.buffer))
        data = bytes(self.buffer[:taken])
        del self.buffer[:taken]
        return data


def _read_in_child(file: Connection, parts: Connection, scope: str, limits: ImportLimits) -> None:
    """The child's whole work: read, send each part, then say how it ended."""
    try:
        for part in read_sessions(_Received(file), scope, limits):  # type: ignore[arg-type]
            parts.send(("part", part))
        parts.send(("end", None))
    except UnreadableImport as exc:
        parts.send(("refused", str(exc)))
    except Exception:  # the server raises it, as a failure of its own
        parts.send(("failed", traceback.format_exc(limit=-3)))
