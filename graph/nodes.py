"""The supervisor graph's nodes: initialize, planning, execution, response.

Each is an async function from state to a partial update; each reports its
progress through LangGraph's custom stream.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from graph.context import TurnContext
from graph.errors import ModelUnavailable
from graph.offline import estimate_tokens
from graph.prompts import MEMORIES_SECTION, SUMMARY_SECTION, SYSTEM_PROMPT
from graph.state import Answer, ThreadState
from graph.streaming import stream_until_cancelled
from graph.tools import MAX_TOOL_ROUNDS, TOOLS_PROMPT, offered_tools, use_tools
from graph.window import rebuild_window, trim_window
from memory.journal import NewMessage

log = logging.getLogger(__name__)
Node = Callable[[ThreadState, Runtime[TurnContext]], Awaitable[dict[str, Any]]]
ANSWER_NAMESPACE = uuid.UUID("5d8f7a8e-2f0c-4a53-9f4e-7f3b0e9f2c11")
MAX_STEPS = 3


def answer_id_for(query_id: str) -> str:
    """The assistant message's id follows from the query's, so a rerun cannot double it."""
    return str(uuid.uuid5(ANSWER_NAMESPACE, query_id))


def reported(name: str) -> Callable[[Node], Node]:
    """Emit `progress` started/finished (with ms) around a node."""

    def wrap(node: Node) -> Node:
        @functools.wraps(node)
        async def run(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
            runtime.stream_writer({"type": "progress", "node": name, "status": "started"})
            started = time.perf_counter()
            update = await node(state, runtime)
            ms = round((time.perf_counter() - started) * 1000, 1)
            runtime.stream_writer(
                {"type": "progress", "node": name, "status": "finished", "ms": ms}
            )
            return update

        return run

    return wrap


@reported("initialize")
async def initialize(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Journal the user message, then make sure the window is the journal's tail."""
    ctx, query, session_id = runtime.context, state["query"], state["session_id"]
    content = query["content"]  # checked by run_turn before the graph starts
    row, created = await ctx.journal.append(
        session_id, NewMessage(id=query["id"], role="user", content=content)
    )
    runtime.stream_writer({"type": "ack", "id": row.id, "seq": row.seq, "message": row.as_dict()})
    if created and row.seq == 1:
        await ctx.sessions.set_title_if_empty(session_id, content)
    window, summary = state.get("messages", []), state.get("summary", "")
    # The window follows the journal when this message comes right after its last one.
    if created and row.seq == state.get("last_seq", 0) + 1 and bool(window) == (row.seq > 1):
        window, last_seq = [*window, HumanMessage(content=content, id=row.id)], row.seq
    else:  # a crash left the checkpoint behind the journal, or this is a resend
        window, summary, last_seq = await rebuild_window(ctx, session_id, window, summary)
    return {
        "messages": window,
        "last_seq": last_seq,
        "summary": summary,
        "started_at": time.time(),
        "steps": 0,
        "answer": None,
        "loaded_memories": [],
    }


@reported("planning")
async def planning(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Decide what the turn needs; for a logged-in user with memory on, load memories."""
    ctx, user_id = runtime.context, state.get("user_id")
    memories: list[dict[str, Any]] = []
    if user_id and state.get("memory_enabled") and ctx.memory_loader is not None:
        memories = await ctx.memory_loader(user_id, state["query"]["content"])
        runtime.stream_writer(
            {
                "type": "memory_loaded",
                "user_id": user_id,
                "memory_count": len(memories),
                "memories": memories,
            }
        )
    return {"loaded_memories": memories, "plan": "answer", "steps": state.get("steps", 0) + 1}


def build_prompt(state: ThreadState, tools: list[BaseTool] | None = None) -> list[BaseMessage]:
    """System prompt, then the summary and memories, then the window. With tools
    offered, the prompt says what they are for and shows each memory's id (which
    `forget` needs)."""
    parts = [SYSTEM_PROMPT]
    if state.get("loaded_memories"):
        lines = "\n".join(
            f"- [{m['kind']}] {m['content']} (from session {m.get('source_session_id')}"
            + (f"; id {m.get('id')})" if tools else ")")
            for m in state["loaded_memories"]
        )
        parts.append(MEMORIES_SECTION.format(memories=lines))
    if state.get("summary"):
        parts.append(SUMMARY_SECTION.format(summary=state["summary"]))
    if tools:
        parts.append(TOOLS_PROMPT)
    window: list[AnyMessage] = state.get("messages", [])
    return [SystemMessage("\n\n".join(parts)), *window]


@dataclass
class Draft:
    """The answer as it grows over a turn's model calls."""

    text: str = ""
    tokens: int = 0
    used: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def cancelled(ctx: TurnContext) -> bool:
    return ctx.cancel is not None and ctx.cancel.is_set()


async def stream_reply(
    model: Runnable[Any, Any],
    messages: list[BaseMessage],
    ctx: TurnContext,
    write: Any,
    draft: Draft,
) -> AIMessageChunk | None:
    """Stream one model call into `draft` (text as it comes, so a failure keeps
    it), forwarding text as `token` events; return the whole reply."""
    gathered: AIMessageChunk | None = None
    lead = "\n\n" if draft.text and not draft.text[-1].isspace() else ""  # after a tool round
    async for chunk in stream_until_cancelled(model.astream(messages), ctx.cancel):
        piece = chunk.content if isinstance(chunk.content, str) else ""
        if piece:
            piece, lead = lead + piece, ""
            draft.text += piece
            write({"type": "token", "content": piece})
        if chunk.usage_metadata:
            draft.tokens += chunk.usage_metadata.get("output_tokens", 0)
        gathered = chunk if gathered is None else gathered + chunk
    return gathered


async def ask_model(
    ctx: TurnContext, tools: list[BaseTool], messages: list[BaseMessage], write: Any, draft: Draft
) -> AIMessageChunk | None:
    """One model call, offering `tools`. A failure before any answer text fails
    the turn (ModelUnavailable); after some, it ends the answer with an error."""
    model = ctx.model.bind_tools(tools) if tools else ctx.model
    try:
        return await stream_reply(model, messages, ctx, write, draft)
    except Exception as exc:  # the model's client raises many kinds; all mean "unavailable"
        log.warning("model call failed: %s", type(exc).__name__, exc_info=True)
        if not draft.text:
            raise ModelUnavailable(f"the model is unavailable ({type(exc).__name__})") from exc
        draft.error = f"the answer was cut off: {type(exc).__name__}"
        return None


async def answer_with_tools(
    ctx: TurnContext, tools: list[BaseTool], messages: list[BaseMessage], write: Any
) -> Draft:
    """Ask the model; while it calls tools, run them and ask again. After
    MAX_TOOL_ROUNDS rounds of calls it is asked once more without tools, so it
    must answer. `messages` is this turn's own list, never the window."""
    draft = Draft()
    for round_ in range(MAX_TOOL_ROUNDS + 1):
        offer = tools if round_ < MAX_TOOL_ROUNDS else []
        reply = await ask_model(ctx, offer, messages, write, draft)
        if reply is None or not offer or cancelled(ctx):
            break
        if not reply.tool_calls and not reply.invalid_tool_calls:
            break
        draft.used += await use_tools(tools, reply, messages, write)
    return draft


@reported("execution")
async def execution(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Call the model and stream its tokens, running its tool calls in a bounded
    loop; a model failure before any answer text fails the turn."""
    ctx = runtime.context
    tools = offered_tools(
        ctx, state.get("user_id"), bool(state.get("memory_enabled")), state["session_id"]
    )
    draft = await answer_with_tools(ctx, tools, build_prompt(state, tools), runtime.stream_writer)
    answer: Answer = {
        "content": draft.text,
        "token_count": draft.tokens or estimate_tokens(draft.text),
        "tools_used": draft.used,
        "has_error": draft.error is not None,
        "error_message": draft.error,
        "cancelled": cancelled(ctx),
    }
    return {"answer": answer, "plan": "respond"}


def after_execution(state: ThreadState) -> str:
    """Hand back to planning for another step, within a bound, or respond."""
    if state.get("plan") == "continue" and state.get("steps", 0) < MAX_STEPS:
        return "planning"
    return "response"


def memory_reference(memory: dict[str, Any]) -> dict[str, Any]:
    """What the answer keeps of a memory it used: enough to show and link it."""
    return {
        "id": memory["id"],
        "kind": memory["kind"],
        "content": str(memory["content"])[:200],
        "source_session_id": memory.get("source_session_id"),
    }


@reported("response")
async def response(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Journal the answer, then fold the window into the summary when over budget."""
    ctx, query, answer = runtime.context, state["query"], state["answer"]
    assert answer is not None
    elapsed_ms = int((time.time() - state.get("started_at", time.time())) * 1000)
    row, _ = await ctx.journal.append(
        state["session_id"],
        NewMessage(
            id=answer_id_for(query["id"]),
            role="assistant",
            content=answer["content"],
            tools_used=answer["tools_used"],
            processing_time_ms=elapsed_ms,
            token_count=answer["token_count"],
            has_error=answer["has_error"],
            error_message=answer["error_message"],
            metadata={
                "reply_to": query["id"],
                "cancelled": answer["cancelled"],
                "memories": [memory_reference(m) for m in state.get("loaded_memories", [])],
            },
        ),
    )
    runtime.stream_writer({"type": "message", "message": row.as_dict()})
    window = [*state.get("messages", []), AIMessage(content=row.content, id=row.id)]
    window, summary = await trim_window(ctx, window, state.get("summary", ""))
    return {"messages": window, "last_seq": row.seq, "summary": summary, "answer": None}
