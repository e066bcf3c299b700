"""The agent's tools on the `ChatOpenAI` path: search the user's past
conversations, remember something, forget a memory. Built per turn and bound
to that turn's user and session; the model never names whose data it touches."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from graph.context import TurnContext
from graph.offline import OfflineChatModel
from memory.errors import InvalidInput
from memory.memories import MemoryDraft, MemoryNotFound

MAX_TOOL_ROUNDS = 3


def offered_tools(
    ctx: TurnContext, user_id: str | None, memory_on: bool, session_id: str
) -> list[BaseTool]:
    """Tools for a logged-in user with memory on, with a real model; none otherwise."""
    if isinstance(ctx.model, OfflineChatModel) or not user_id or not memory_on:
        return []
    if ctx.memories is None:
        return []
    memories = ctx.memories

    async def search_past_conversations(query: str) -> str:
        """Search the user's earlier conversations (all their sessions) for `query`."""
        hits = await ctx.journal.search_user_messages(user_id, query, limit=5)
        if not hits:
            return "Nothing found in past conversations."
        return "\n".join(
            f"- [{h['created_at'][:10]}, session {h['session_id']} “{h['title'] or ''}”] "
            f"{h['role']}: {h['content'][:300]}"
            for h in hits
        )

    async def remember(content: str, kind: str = "fact", key: str | None = None) -> str:
        """Save a lasting memory about the user (kind: fact, preference or entity)."""
        if kind not in ("fact", "preference", "entity"):
            return "kind must be fact, preference or entity"
        try:
            saved = await memories.add(
                user_id, MemoryDraft(kind, key, content), source_session_id=session_id
            )
        except InvalidInput as exc:
            return f"not saved: {exc}"
        return f"Saved memory {saved.id}."

    async def forget(memory_id: str) -> str:
        """Delete one of the user's memories by its id."""
        try:
            await memories.delete(user_id, memory_id)
        except MemoryNotFound:
            return "No such memory."
        return "Forgotten."

    return [
        StructuredTool.from_function(coroutine=fn, name=fn.__name__, description=fn.__doc__)
        for fn in (search_past_conversations, remember, forget)
    ]


async def run_tool(tools: list[BaseTool], call: dict[str, Any]) -> tuple[str, bool]:
    """Run one tool call; a failure becomes a message for the model, not a crash."""
    tool = next((t for t in tools if t.name == call["name"]), None)
    if tool is None:
        return f"Unknown tool {call['name']}.", False
    try:
        result = await tool.ainvoke(call.get("args", {}))
    except (InvalidInput, ValueError, TypeError) as exc:
        return f"The tool failed: {exc}", False
    text = str(result)
    ok = not text.startswith(("No such", "not saved", "kind must", "Unknown tool"))
    return text, ok
