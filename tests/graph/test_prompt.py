"""The system prompt names the user when a loaded fact or the window says their
name (graph/prompts.py: users_name), the last statement winning."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from graph.prompts import build_prompt
from graph.state import ThreadState


def system_text(state: dict[str, Any]) -> str:
    return str(build_prompt(ThreadState(**state), with_tools=False)[0].content)  # type: ignore[typeddict-item]


def fact(content: str) -> dict[str, Any]:
    return {"id": content, "kind": "fact", "content": content}


def test_the_prompt_names_the_user_from_a_fact_or_the_window() -> None:
    assert "The user's name is" not in system_text({"messages": [HumanMessage("hello")]})
    remembered = {"loaded_memories": [fact("User said: my name is Ada")], "messages": []}
    assert "The user's name is Ada." in system_text(remembered)
    # The window says it later than the memory: the window's name wins.
    renamed = {
        **remembered,
        "messages": [HumanMessage("I live in Oslo. Call me Grace"), AIMessage("Hello Grace")],
    }
    assert "The user's name is Grace." in system_text(renamed)
    # An assistant's words never name the user; other kinds of fact are no name.
    assert "The user's name is" not in system_text(
        {
            "loaded_memories": [fact("User said: I live in Oslo")],
            "messages": [AIMessage("my name is Threadline")],
        }
    )


def test_past_conversations_are_listed_latest_first() -> None:
    """Whatever order recall found them in (a matched one first): the first
    is "last time"."""
    memories = [
        {"id": "1", "kind": "summary", "content": "- user said: older", "updated_at": "2026-01-01"},
        {
            "id": "2",
            "kind": "summary",
            "content": "- user said: latest",
            "updated_at": "2026-03-01",
        },
        {
            "id": "3",
            "kind": "summary",
            "content": "- user said: middle",
            "updated_at": "2026-02-01",
        },
    ]
    system = system_text({"messages": [HumanMessage("hi")], "loaded_memories": memories})
    assert system.index("latest") < system.index("middle") < system.index("older")
    # each with the day it was last talked of: "last month" is a date to read
    assert "- (1 March 2026) - user said: latest" in system, system
    memories[0]["updated_at"] = "not a date"
    system = system_text({"messages": [HumanMessage("hi")], "loaded_memories": memories})
    assert "- - user said: older" in system, system
