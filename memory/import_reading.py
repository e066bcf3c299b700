"""Reading an import file: Threadline's own export or ChatGPT's `conversations.json`.

Reading is bounded whatever the file: the parser's events are counted, so a file
nested deeper than the limit is refused before anything is built from it; a
ChatGPT export is read one conversation at a time, keeping only the fields an
import uses; a Threadline export's messages are checked one at a time and
handed on in parts. Reading is plain blocking code, for a worker thread; the
writing is memory/imports.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any

import ijson

from memory.session_format import (
    IMPORT_NAMESPACE,
    ImportedMessage,
    ImportedSession,
    ImportLimits,
    UnreadableImport,
    imported_text,
    read_timestamp,
    session_title,
    threadline_header,
    threadline_message,
)
from memory.sessions import Owner

BATCH = 500

# Which fields of a value to build: True keeps all of it, a mapping names the
# fields kept ("*" stands for any other), and what is not named is skipped
# unbuilt. The items of a list are read as the list is.
Keep = bool | dict[str, Any]
CHATGPT_FIELDS: Keep = {
    **dict.fromkeys(("id", "conversation_id", "title", "create_time", "current_node"), True),
    "mapping": {
        "*": {
            "id": True,
            "parent": True,
            "message": {
                "id": True,
                "author": {"role": True},
                "create_time": True,
                "content": {"parts": True},
            },
        }
    },
}
EXPORT_FIELDS: dict[str, Keep] = {
    "format": True,
    "version": True,
    "session": dict.fromkeys(("id", "title", "created_at"), True),
}
EXPORT_MESSAGE_FIELDS: Keep = dict.fromkeys(
    (
        "id",
        "role",
        "content",
        "created_at",
        "tools_used",
        "processing_time_ms",
        "token_count",
        "has_error",
        "error_message",
    ),
    True,
)
_OPEN = frozenset(("start_map", "start_array"))
_CLOSE = frozenset(("end_map", "end_array"))
Events = Iterator[tuple[str, Any]]


def import_scope(owner: Owner) -> str:
    """The scope in which an owner's imported ids are derived."""
    return f"user:{owner.user_id}" if owner.user_id else f"anon:{owner.anon_token_hash}"


def derived_id(scope: str, raw: object) -> str:
    """An id of the importer's own made from one a file gives: the same file gives
    the same ids again, and two owners importing one file never collide."""
    try:
        return str(uuid.uuid5(IMPORT_NAMESPACE, f"{scope}:{raw}"))
    except UnicodeEncodeError:
        raise UnreadableImport("an id in the file is not valid Unicode") from None


def read_sessions(
    stream: IO[bytes], scope: str = "", limits: ImportLimits | None = None
) -> Iterator[ImportedSession]:
    """Sessions from a file, whichever format, read incrementally.

    A long Threadline session comes in consecutive parts with the same id, each of
    at most BATCH messages (`import_sessions` joins them).
    """
    limits = limits or ImportLimits()
    try:
        first = stream.read(1)
        while first in (b" ", b"\n", b"\r", b"\t", b"\xef", b"\xbb", b"\xbf"):
            first = stream.read(1)
        events = _bounded_events(_prepend(first, stream), limits.max_depth)
        if first == b"[":
            yield from _chatgpt_sessions(events, scope, limits)
        elif first == b"{":
            yield from _threadline_parts(events, limits)
        else:
            raise UnreadableImport(
                "not JSON: expected a Threadline export object or a ChatGPT array"
            )
        for _ in events:  # only whitespace may follow; the parser refuses anything else
            raise UnreadableImport("not valid JSON: more than one value")
    except ijson.JSONError as exc:
        raise UnreadableImport(f"not valid JSON: {exc}") from exc
    except UnicodeDecodeError:
        raise UnreadableImport("not valid JSON: the text is not UTF-8") from None


def _bounded_events(stream: _prepend, max_depth: int) -> Events:
    """The parser's events, refused as soon as the nesting passes `max_depth` (a
    parser's cost can grow with the square of the depth)."""
    depth = 0
    for event, value in ijson.basic_parse(stream, use_float=True):
        if event in _OPEN:
            depth += 1
            if depth > max_depth:
                raise UnreadableImport(f"the JSON is nested deeper than {max_depth} levels")
        elif event in _CLOSE:
            depth -= 1
        yield event, value


def _build(events: Events, event: str, value: Any, keep: Keep = True) -> Any:
    """The value that starts with `event`, built from the events up to its end,
    leaving out what `keep` does not name."""
    if event not in _OPEN:
        return value
    if keep is False:
        _skip(events, event)
        return None
    root: Any = {} if event == "start_map" else []
    stack: list[tuple[Any, Keep]] = [(root, keep)]
    key = ""
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event in _CLOSE:
            stack.pop()
            if not stack:
                return root
            continue
        container, spec = stack[-1]
        is_map = type(container) is dict
        if is_map and isinstance(spec, dict):
            child: Keep = spec[key] if key in spec else spec.get("*", False)
        else:
            child = spec
        if child is False:
            _skip(events, event)
            continue
        item = {} if event == "start_map" else [] if event == "start_array" else value
        if is_map:
            container[key] = item
        else:
            container.append(item)
        if event in _OPEN:
            stack.append((item, child))
    raise UnreadableImport("not valid JSON: the file ends inside a value")


def _skip(events: Events, event: str) -> None:
    """Read past the value that starts with `event` without building it."""
    depth = 1 if event in _OPEN else 0
    while depth:
        event, _ = next(events)
        depth += (event in _OPEN) - (event in _CLOSE)


def _chatgpt_sessions(
    events: Events, scope: str, limits: ImportLimits
) -> Iterator[ImportedSession]:
    next(events)  # the array's start
    # Each turn reads one conversation's first event; building it reads the rest.
    for index, (event, value) in enumerate(events):
        if event == "end_array":
            return
        if index == limits.max_sessions:
            raise UnreadableImport(
                f"more than {limits.max_sessions} conversations in one file; import it in parts"
            )
        conversation = _build(events, event, value, CHATGPT_FIELDS)
        yield chatgpt_session(conversation, index, scope, limits.max_message_chars)


def _threadline_parts(events: Events, limits: ImportLimits) -> Iterator[ImportedSession]:
    """The export's session in parts, each message checked as it is read. Messages
    wait until the fields that describe the session (our exports write them
    first) are read and right."""
    next(events)  # the object's start
    fields: dict[str, Any] = {}
    header: ImportedSession | None = None
    pending: list[ImportedMessage] = []
    parts = 0
    for event, key in events:
        if event == "end_map":
            break
        event, value = next(events)
        if key != "messages":
            fields[key] = _build(events, event, value, EXPORT_FIELDS.get(key, False))
            continue
        if event != "start_array":
            raise UnreadableImport("`messages` must be a list")
        fields[key] = True
        for index, raw in enumerate(_array(events, EXPORT_MESSAGE_FIELDS)):
            where = f"message {index}"
            pending.append(threadline_message(raw, where, limits.max_message_chars))
            if header is None and {"format", "version", "session"} <= fields.keys():
                header = threadline_header(fields)
            if header is not None and len(pending) == BATCH:
                yield replace(header, messages=pending)
                pending, parts = [], parts + 1
    header = header or threadline_header(fields)
    if pending or not parts:
        yield replace(header, messages=pending)


def _array(events: Events, keep: Keep) -> Iterator[Any]:
    """The items of the array whose start was just read, built one at a time."""
    for event, value in events:
        if event == "end_array":
            return
        yield _build(events, event, value, keep)


class _prepend:
    """A file whose first bytes were already read."""

    def __init__(self, first: bytes, rest: IO[bytes]) -> None:
        self.first, self.rest = first, rest

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""  # ijson probes with read(0) to learn bytes from str
        if self.first:
            data, self.first = self.first, b""
            return data + (self.rest.read(size - len(data)) if size > len(data) else b"")
        return self.rest.read(size)


def chatgpt_session(
    conversation: Any, index: int, scope: str, max_chars: int = ImportLimits.max_message_chars
) -> ImportedSession:
    """One conversation of ChatGPT's export: the path from its current node back
    to the root of `mapping`, in order, keeping user and assistant text.

    Its ids are derived from ChatGPT's within `scope` (the importing owner):
    importing twice adds nothing, and two people importing the same export
    never collide.
    """
    where = f"conversation {index}"
    if not isinstance(conversation, dict) or not isinstance(conversation.get("mapping"), dict):
        raise UnreadableImport(f"{where}: expected an object with a `mapping`")
    mapping: dict[str, Any] = conversation["mapping"]
    node_id = conversation.get("current_node")
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    while isinstance(node_id, str) and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if not isinstance(node, dict):
            raise UnreadableImport(f"{where}: node {node_id[:40]!r} is not an object")
        path.append(node)
        node_id = node.get("parent")
    found = (_chatgpt_message(n, where, scope, max_chars) for n in reversed(path))
    raw_id = conversation.get("id") or conversation.get("conversation_id") or index
    return ImportedSession(
        id=derived_id(scope, raw_id),
        title=session_title(conversation.get("title"), f"{where}: title"),
        created_at=read_timestamp(conversation.get("create_time"), f"{where}: create_time"),
        messages=[m for m in found if m],
    )


def _chatgpt_message(
    node: dict[str, Any], where: str, scope: str, max_chars: int
) -> ImportedMessage | None:
    message = node.get("message")
    if message is None:
        return None
    author = message.get("author") if isinstance(message, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(author, dict) or not isinstance(content, dict):
        raise UnreadableImport(f"{where}: a message needs an `author` and a `content` object")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise UnreadableImport(f"{where}: a message's `content.parts` must be a list")
    text = "\n".join(p for p in parts if isinstance(p, str)).strip()
    if author.get("role") not in ("user", "assistant") or not text:
        return None  # system prompts, tool calls and images are not conversation text
    text = imported_text(text, f"{where}: a message", max_chars)
    raw_id = message.get("id") or node.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        raise UnreadableImport(f"{where}: a message has no id")
    created_at = read_timestamp(message.get("create_time"), f"{where}: create_time")
    return ImportedMessage(derived_id(scope, raw_id), author["role"], text, created_at)
