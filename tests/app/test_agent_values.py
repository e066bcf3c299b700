"""A thread's `values` as the Agent Server API sends them at the end of a run:
JSON written by PostgreSQL (Journal.tail_json), the same as `message_dict`."""

from __future__ import annotations

import json
import uuid

from app.routes.agent_api import message_dict
from app.routes.agent_stream import sse, sse_json
from memory.journal import Journal, NewMessage
from memory.sessions import Owner, SessionStore

AWKWARD = [
    'a "quoted" word, a back\\slash and a tab\there',
    "two\nlines\r\nand a form feed \f",
    "Grüße, 東京, emoji 🧵, RTL שלום",
    "</script><b>not markup</b> \u2028 \u2029",
    "",
]


async def test_tail_json_is_the_messages_as_message_dict_gives_them(
    sessions: SessionStore, journal: Journal
) -> None:
    session_id = (await sessions.create(Owner(anon_token_hash="v" * 64))).id
    for i, content in enumerate(AWKWARD * 3):
        role = "user" if i % 2 == 0 else "assistant"
        await journal.append(session_id, NewMessage(str(uuid.uuid4()), role, content or "-"))
    for n in (1, 4, 15, 200):
        expected = [message_dict(row) for row in await journal.tail(session_id, n)]
        assert json.loads(await journal.tail_json(session_id, n)) == expected


async def test_tail_json_of_a_session_that_is_not_there_is_an_empty_list(
    journal: Journal,
) -> None:
    assert json.loads(await journal.tail_json(str(uuid.uuid4()), 200)) == []


def test_an_event_of_json_text_over_lines_is_sent_as_data_lines() -> None:
    text = '[{"a" : 1},\n {"b" : "x\\ny"}]'
    event = sse_json("values", text, "3")
    assert event.endswith("\n\n") and event.count("\n\n") == 1
    lines = event.removesuffix("\n\n").split("\n")
    assert lines[:2] == ["event: values", "id: 3"]
    data = "\n".join(line.removeprefix("data: ") for line in lines[2:])
    assert all(line.startswith("data: ") for line in lines[2:])
    assert json.loads(data) == [{"a": 1}, {"b": "x\ny"}]
    assert sse("end", None) == "event: end\ndata: null\n\n"
