"""The thread state the checkpointer keeps: bounded, whatever the conversation's length.

Between turns it holds the model's window, the summary before it and the seq
of the window's end. During a turn it also holds the turn's working set (the
plan, the step results, the answer so far); `response` clears that, so the
checkpoint a finished turn leaves is the same size at turn 10 and turn 10,000.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AnyMessage

# What planning can decide (docs/design.md, "The supervisor loop"):
#   answer    one model call without tools: the answer
#   tools     one model call offering the memory tools; the model chooses
#   search    run search_past_conversations with the plan's arguments
#   remember  run remember with the plan's arguments
#   forget    run forget with the plan's arguments
#   respond   stop here: journal what there is (cancelled, or nothing left to do)
Step = Literal["answer", "tools", "search", "remember", "forget", "respond"]
TOOL_OF_STEP = {
    "search": "search_past_conversations",
    "remember": "remember",
    "forget": "forget",
}


class Query(TypedDict):
    """One user turn: the client-made id becomes the journaled message id."""

    id: str
    content: str
    # What the Agent Server API run asking it was created with (its `metadata`
    # and `multitask_strategy`): journaled with the question, never shown to
    # the model.
    run: NotRequired[dict[str, Any]]


class Plan(TypedDict):
    """Planning's decision for the next execution pass, and why."""

    step: Step
    reason: str
    args: dict[str, Any]  # the tool's arguments, for a tool step


class Draft(TypedDict):
    """The answer as it grows over the turn's execution passes."""

    content: str
    token_count: int
    error_message: str | None
    limit_reached: bool  # the step limit ended the loop


class ThreadState(TypedDict, total=False):
    """Only the model's window lives here between turns; the journal holds the
    full history. `messages` is a suffix of the journal; `summary` covers
    everything before it."""

    messages: list[AnyMessage]
    last_seq: int  # the journal seq of the window's last message
    summary: str
    session_id: str
    user_id: str | None
    memory_enabled: bool
    query: Query
    # The turn's working set, reset by initialize and cleared by response:
    loaded_memories: list[dict[str, Any]]
    memories_loaded: bool
    plan: Plan | None
    steps: int  # execution passes so far
    work: list[AnyMessage]  # this turn's tool calls and results, after the window
    tools_used: list[dict[str, Any]]
    draft: Draft | None
    route: list[dict[str, Any]]  # each pass: node, plan or tools, ms
    started_at: float


def empty_draft() -> Draft:
    return {"content": "", "token_count": 0, "error_message": None, "limit_reached": False}
