"""The thread state the checkpointer keeps: bounded, whatever the conversation's length."""

from __future__ import annotations

from typing import Any, TypedDict

from langchain_core.messages import AnyMessage


class Query(TypedDict):
    """One user turn: the client-made id becomes the journaled message id."""

    id: str
    content: str


class Answer(TypedDict):
    """What execution produced, for response to journal."""

    content: str
    token_count: int
    tools_used: list[dict[str, Any]]
    has_error: bool
    error_message: str | None
    cancelled: bool


class ThreadState(TypedDict, total=False):
    """Only the model's window lives here; the journal holds the full history.

    `messages` is a suffix of the journal; `summary` covers everything before it.
    """

    messages: list[AnyMessage]
    last_seq: int  # the journal seq of the window's last message
    summary: str
    session_id: str
    user_id: str | None
    memory_enabled: bool
    query: Query
    loaded_memories: list[dict[str, Any]]
    plan: str
    steps: int
    answer: Answer | None
    started_at: float
