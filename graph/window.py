"""The model's window: a suffix of the journal, rebuilt from it when they disagree."""

from __future__ import annotations

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage

from graph.context import TurnContext
from graph.offline import text_of
from graph.summary import summarize
from memory.models import ChatMessage


def to_window_message(row: ChatMessage) -> AnyMessage:
    """A journal row as the model sees it (tool rows read as assistant notes)."""
    if row.role == "user":
        return HumanMessage(content=row.content, id=row.id)
    if row.role == "tool":
        return AIMessage(content=f"[tool] {row.content}", id=row.id)
    return AIMessage(content=row.content, id=row.id)


def role_of(message: AnyMessage) -> str:
    return "user" if isinstance(message, HumanMessage) else "assistant"


async def rebuild_window(
    ctx: TurnContext, session_id: str, old_window: list[AnyMessage], summary: str
) -> tuple[list[AnyMessage], str, int]:
    """The journal's tail as the window, the summary caught up to its start, and
    the seq of its last message.

    The old summary covers everything before the old window's first message;
    whatever lies between that and the new window's start is folded in.
    """
    start = 1
    first = await ctx.journal.get(str(old_window[0].id)) if old_window else None
    if first is not None and first.session_id == session_id:
        start = first.seq
    else:
        summary = ""
    tail = await ctx.journal.tail(session_id, ctx.window_messages, min_seq=start)
    if tail and tail[0].seq > start:
        gap = await ctx.journal.between(session_id, start, tail[0].seq - 1)
        summary = await summarize(ctx.model, summary, [(m.role, m.content) for m in gap])
    return [to_window_message(m) for m in tail], summary, tail[-1].seq if tail else 0


async def trim_window(
    ctx: TurnContext, window: list[AnyMessage], summary: str
) -> tuple[list[AnyMessage], str]:
    """Over budget, fold the older half of the window into the summary.

    Halving (rather than dropping one message a turn) means one summary call
    every few turns instead of every turn.
    """
    if len(window) <= ctx.window_messages:
        return window, summary
    keep = max(2, ctx.window_messages // 2)
    dropped, window = window[:-keep], window[-keep:]
    turns = [(role_of(m), text_of(m)) for m in dropped]
    return window, await summarize(ctx.model, summary, turns)
