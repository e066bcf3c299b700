"""A large import is read in a child process: the same parts as the reader gives
in this process, its refusals raised here, and no child left behind."""

from __future__ import annotations

import io
import json
import multiprocessing
from contextlib import aclosing
from typing import Any

import pytest

from memory.import_reading import BATCH, read_sessions
from memory.session_format import ImportLimits, UnreadableImport
from tests.support.chatgpt import conversation
from threads import import_reader
from threads.import_reader import IN_THREAD_BYTES, in_child_process, read_parts


def chatgpt_file(conversations: int, messages: int, *, last: str = "fine") -> bytes:
    """A ChatGPT export of `conversations` conversations of `messages` messages
    each, the very last message saying `last`."""
    files = []
    for c in range(conversations):
        texts = [f"message {c}.{n} " * 20 for n in range(messages)]
        if c == conversations - 1:
            texts[-1] = last
        files.append(conversation(c, texts))
    return json.dumps(files).encode()


def children() -> list[str]:
    return [p.name for p in multiprocessing.active_children()]


async def test_a_child_reads_what_this_process_reads() -> None:
    body = chatgpt_file(3, BATCH + 40)
    here = list(read_sessions(io.BytesIO(body), "scope", ImportLimits()))
    async with aclosing(in_child_process(io.BytesIO(body), "scope", ImportLimits())) as parts:
        there = [part async for part in parts]
    assert there == here
    assert sum(len(part.messages) for part in there) == 3 * (BATCH + 40)
    assert "threadline-import-reader" not in children()


async def test_the_childs_refusal_is_raised_here() -> None:
    body = chatgpt_file(2, 50, last="a\x00b")
    with pytest.raises(UnreadableImport, match="NUL"):
        async with aclosing(in_child_process(io.BytesIO(body), "s", ImportLimits())) as parts:
            async for _ in parts:
                pass
    three = ImportLimits(max_sessions=3)
    with pytest.raises(UnreadableImport, match="more than 3 conversations"):
        async with aclosing(in_child_process(io.BytesIO(chatgpt_file(5, 2)), "s", three)) as parts:
            async for _ in parts:
                pass
    assert "threadline-import-reader" not in children()


async def test_a_reader_no_longer_wanted_is_stopped() -> None:
    """The writer failed after the first part: the child is killed, mid-file."""
    body = chatgpt_file(40, 200)
    async with aclosing(in_child_process(io.BytesIO(body), "s", ImportLimits())) as parts:
        async for _ in parts:
            assert "threadline-import-reader" in children()
            break
    assert "threadline-import-reader" not in children()


async def test_only_large_files_go_to_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = chatgpt_file(1, 4), chatgpt_file(30, 200)
    assert len(small) <= IN_THREAD_BYTES < len(large)
    went: list[int] = []
    real = import_reader.in_child_process

    def counted(file: Any, scope: str, limits: ImportLimits) -> Any:
        went.append(len(file.getvalue()))
        return real(file, scope, limits)

    monkeypatch.setattr(import_reader, "in_child_process", counted)
    for body in (small, large):
        async with aclosing(read_parts(io.BytesIO(body), "s", ImportLimits())) as parts:
            got = [part async for part in parts]
        assert got == list(read_sessions(io.BytesIO(body), "s", ImportLimits()))
    assert went == [len(large)]
