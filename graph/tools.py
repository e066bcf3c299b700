"""The agent's memory tools (search the user's past conversations, remember
something, forget a memory) and the tool step that runs them.

Built per turn as closures over that turn's user, session and query: no tool
takes a user id, so the model can never name whose data it touches. A tool
that refuses (a wrong memory id, bad arguments) answers with an error text and
is recorded with `ok: False`; it never fails the turn. A model that calls tools
chooses them; for the offline model, planning does (graph/planner.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field, ValidationError

from graph.context import TurnContext
from graph.offline import OfflineChatModel
from memory.errors import InvalidInput
from memory.journal import Journal
from memory.memories import MemoryDraft, MemoryNotFound, MemoryStore

log = logging.getLogger(__name__)
MAX_CALLS_PER_STEP = 5
SEARCH_HITS = 5
RESULT_KEPT = 1000  # characters of a tool's result kept in `tools_used`
REMEMBER_NAMESPACE = uuid.UUID("0b9a3c1e-52d4-4f7e-9a61-6c2f1d8e7b30")
Write = Callable[[Any], None]


class ToolRefused(Exception):
    """A tool's refusal, told to the model as the call's result."""


class SearchArgs(BaseModel):
    query: str = Field(description="Words to look for, as the user would have written them.")


class RememberArgs(BaseModel):
    content: str = Field(description="What to remember, as one short sentence.")
    kind: Literal["fact", "preference", "entity"] = Field(
        "fact", description="fact, preference, or entity (a person, place or project)."
    )
    key: str | None = Field(
        None,
        description="For a preference or entity, its name: a later memory with "
        "the same key replaces this one.",
    )


class ForgetArgs(BaseModel):
    memory_id: str = Field(description="The memory's reference as listed (m1, m2, …), or its id.")


def can_use_tools(model: BaseChatModel) -> bool:
    """A model that can be given tools: not the offline one, nor one without `bind_tools`."""
    if isinstance(model, OfflineChatModel):
        return False
    return type(model).bind_tools is not BaseChatModel.bind_tools


def memory_tools(
    ctx: TurnContext,
    user_id: str | None,
    memory_on: bool,
    session_id: str,
    query_id: str,
    refs: dict[str, str] | None = None,
) -> list[BaseTool]:
    """The turn's memory tools: all three for a logged-in user with memory on,
    none for an anonymous or memory-off session. `refs` are the prompt's short
    references to memories (m1 → its id), which `forget` accepts."""
    if not user_id or not memory_on or ctx.memories is None:
        return []
    return [
        search_tool(ctx.journal, user_id, session_id),
        remember_tool(ctx.memories, user_id, session_id, query_id),
        forget_tool(ctx.memories, user_id, refs or {}),
    ]


def snippet(content: str, query: str, width: int = 240) -> str:
    """About `width` characters of `content` around the first query word found in it."""
    lowered = content.lower()
    found = [i for word in query.lower().split() if (i := lowered.find(word)) >= 0]
    start = max(0, min(found, default=0) - width // 3)
    piece = " ".join(content[start : start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(content) else "")


def search_tool(journal: Journal, user_id: str, session_id: str) -> BaseTool:
    """search_past_conversations, over this user's other sessions with memory on."""

    async def search_past_conversations(query: str) -> str:
        query = " ".join(query.split())[:200]
        if not query:
            raise ToolRefused("The query is empty.")
        hits = await journal.search_user_messages(
            user_id, query, exclude_session_id=session_id, limit=SEARCH_HITS
        )
        if not hits:
            return "Nothing found in past conversations."
        return "\n".join(
            f"- {h['created_at'][:10]}, session {h['session_id']} “{h['title'] or 'untitled'}”, "
            f"{h['role']}: {snippet(h['content'], query)}"
            for h in hits
        )

    return StructuredTool(
        name="search_past_conversations",
        description="Search the user's earlier conversations (other sessions) for text; "
        "returns up to 5 snippets with their session, title and date.",
        args_schema=SearchArgs,
        coroutine=search_past_conversations,
    )


def remember_tool(memories: MemoryStore, user_id: str, session_id: str, query_id: str) -> BaseTool:
    """remember, saving to this user's memories with this session as the source.

    The nth memory a turn saves has an id made from the query's id and n, so a
    turn run again (a resend after a crash) finds it saved and stores nothing twice.
    """
    saved_so_far = 0

    async def remember(content: str, kind: str = "fact", key: str | None = None) -> str:
        nonlocal saved_so_far
        saved_so_far += 1
        memory_id = str(uuid.uuid5(REMEMBER_NAMESPACE, f"{query_id}:{saved_so_far}"))
        try:
            draft = MemoryDraft(kind, key, content)
            saved = await memories.add(
                user_id, draft, source_session_id=session_id, memory_id=memory_id
            )
        except InvalidInput as exc:
            raise ToolRefused(f"Not saved: {exc}.") from exc
        return f"Saved memory {saved.id} ({saved.kind}{f', key {saved.key}' if saved.key else ''})."

    return StructuredTool(
        name="remember",
        description="Save a lasting memory about the user for future conversations.",
        args_schema=RememberArgs,
        coroutine=remember,
    )


def forget_tool(memories: MemoryStore, user_id: str, refs: dict[str, str]) -> BaseTool:
    """forget, deleting one of this user's memories (another user's is 'no such memory')."""

    async def forget(memory_id: str) -> str:
        wanted = memory_id.strip()
        try:
            gone = await memories.delete(user_id, refs.get(wanted.lower(), wanted))
        except MemoryNotFound as exc:
            raise ToolRefused("No such memory.") from exc
        return f"Forgot memory {gone.id}: “{gone.content}”."

    return StructuredTool(
        name="forget",
        description="Delete one of the user's memories by its reference (m1, m2, …).",
        args_schema=ForgetArgs,
        coroutine=forget,
    )


async def run_tool(tools: list[BaseTool], call: dict[str, Any]) -> tuple[str, bool]:
    """Run one tool call: its result and whether it succeeded. A refusal, bad
    arguments or a failure becomes a message for the model, not a crash."""
    tool = next((t for t in tools if t.name == call.get("name")), None)
    if tool is None:
        return f"Unknown tool {call.get('name')!r}.", False
    try:
        return str(await tool.ainvoke(call.get("args") or {})), True
    except ToolRefused as exc:
        return str(exc), False
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return f"Invalid arguments: {problems}.", False
    except Exception as exc:  # a tool's failure is the model's to explain, not the turn's
        log.warning("tool %s failed", tool.name, exc_info=True)
        return f"The tool failed ({type(exc).__name__}).", False


def recorded_args(args: Any) -> dict[str, Any]:
    """A call's arguments as `tools_used` keeps them: short, and without the NUL
    character JSONB refuses."""
    if not isinstance(args, dict):
        return {}
    return {
        str(k)[:64].replace("\x00", ""): v
        if v is None or isinstance(v, bool | int | float)
        else str(v)[:500].replace("\x00", "")
        for k, v in args.items()
    }


async def outcome(tools: list[BaseTool], call: dict[str, Any], n: int) -> tuple[str, bool]:
    """What the `n`th call of a step yields, refusing malformed and excess calls."""
    if n >= MAX_CALLS_PER_STEP:
        return f"Not run: at most {MAX_CALLS_PER_STEP} tool calls at a time.", False
    if call.get("type") == "invalid_tool_call":
        return "Not run: the arguments were not valid JSON.", False
    return await run_tool(tools, call)


def with_ids(reply: AIMessage) -> AIMessage:
    """The reply as the turn's history keeps it, every call with an id to answer."""
    valid = [{**c, "id": c.get("id") or f"call_{n}"} for n, c in enumerate(reply.tool_calls)]
    invalid = [
        {**c, "id": c.get("id") or f"bad_call_{n}"} for n, c in enumerate(reply.invalid_tool_calls)
    ]
    return AIMessage(content=reply.content, tool_calls=valid, invalid_tool_calls=invalid)


async def use_tools(
    tools: list[BaseTool],
    reply: AIMessage,
    work: list[AnyMessage],
    write: Write,
    cancel: asyncio.Event | None = None,
) -> list[dict[str, Any]]:
    """Run the reply's tool calls, add the reply and the results to the turn's
    `work`, report each as `tool` events; return what `tools_used` records.
    After a cancel, the calls not yet started are answered "not run"."""
    reply = with_ids(reply)
    work.append(reply)
    used = []
    calls = [*map(dict, reply.tool_calls), *map(dict, reply.invalid_tool_calls)]
    for n, call in enumerate(calls):
        name, args = str(call.get("name") or "unknown"), recorded_args(call.get("args"))
        if cancel is not None and cancel.is_set():
            work.append(ToolMessage("Not run: cancelled.", tool_call_id=call["id"], name=name))
            continue
        write({"type": "tool", "name": name, "status": "started", "args": args})
        started = time.perf_counter()
        result, ok = await outcome(tools, call, n)
        ms = round((time.perf_counter() - started) * 1000, 1)
        kept = result[:RESULT_KEPT]
        write({"type": "tool", "name": name, "status": "finished", "ok": ok, "result": kept})
        used.append({"name": name, "args": args, "ok": ok, "result": kept, "ms": ms})
        work.append(ToolMessage(result, tool_call_id=call["id"], name=name))
    return used


async def run_planned(
    tools: list[BaseTool],
    name: str,
    args: dict[str, Any],
    work: list[AnyMessage],
    write: Write,
    call_id: str,
) -> list[dict[str, Any]]:
    """Run one tool planning chose, recorded in `work` as if the model had asked
    for it (a call, then its result), so the model answers from it."""
    call = AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])
    return await use_tools(tools, call, work, write)
