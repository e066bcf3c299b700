"""The supervisor graph's nodes: initialize, planning, execution, response.

Planning decides the next step (graph/planner.py), execution takes it (one
model call, streamed, or one tool step), and the graph loops back to planning
after every tool step until the answer is in or the step limit ends it. Each
node reports its progress through LangGraph's custom stream, and each pass is
recorded on the turn's `route`, which the journaled answer keeps as its steps.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.runtime import Runtime

from graph.context import TurnContext
from graph.draft import ToolsRefused, ask_model
from graph.intents import EVERYTHING, asks_to_forget, forgets_everything, recognise
from graph.offline import estimate_tokens, said_about
from graph.planner import AFTER_ANSWER, Situation, decide, forget_left_undone, tool_plan
from graph.prompts import build_prompt, memory_refs
from graph.state import TOOL_OF_STEP, Draft, ThreadState, empty_draft
from graph.tools import can_use_tools, memory_tools, run_planned, use_tools
from graph.window import rebuild_window, trim_window
from memory.journal import NewMessage

Node = Callable[[ThreadState, Runtime[TurnContext]], Awaitable[dict[str, Any]]]
Describe = Callable[[ThreadState, dict[str, Any]], dict[str, Any]]
ANSWER_NAMESPACE = uuid.UUID("5d8f7a8e-2f0c-4a53-9f4e-7f3b0e9f2c11")


def answer_id_for(query_id: str) -> str:
    """The assistant message's id follows from the query's, so a rerun cannot double it."""
    return str(uuid.uuid5(ANSWER_NAMESPACE, query_id))


def reported(name: str, describe: Describe | None = None) -> Callable[[Node], Node]:
    """Emit `progress` started/finished (with ms and what the pass did) around
    a node, and add the pass to the turn's route."""

    def wrap(node: Node) -> Node:
        @functools.wraps(node)
        async def run(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
            runtime.stream_writer({"type": "progress", "node": name, "status": "started"})
            started = time.perf_counter()
            update = await node(state, runtime)
            ms = round((time.perf_counter() - started) * 1000, 1)
            detail = describe(state, update) if describe else {}
            runtime.stream_writer(
                {"type": "progress", "node": name, "status": "finished", "ms": ms, **detail}
            )
            if name != "response":  # response journals the route before it ends
                route = update.get("route", state.get("route", []))
                update["route"] = [*route, {"node": name, "ms": ms, **detail}]
            return update

        return run

    return wrap


def cancelled(ctx: TurnContext) -> bool:
    return ctx.cancel is not None and ctx.cancel.is_set()


def tools_for(state: ThreadState, ctx: TurnContext) -> list[Any]:
    return memory_tools(
        ctx,
        state.get("user_id"),
        bool(state.get("memory_enabled")),
        state["session_id"],
        state["query"]["id"],
        memory_refs(state.get("loaded_memories", [])),
    )


@reported("initialize")
async def initialize(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Make sure the window is the journal's tail, the turn's question last (run_turn
    journaled and acknowledged the question before the graph ran)."""
    ctx, query, session_id = runtime.context, state["query"], state["session_id"]
    content = query["content"]  # checked by run_turn before the graph starts
    assert ctx.journaled is not None and ctx.journaled[0].id == query["id"], "see run_turn"
    row, created = ctx.journaled
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
        **turn_cleared(),
    }


def turn_cleared() -> dict[str, Any]:
    """The turn's working set, empty: set before a turn and after it."""
    return {
        "loaded_memories": [],
        "memories_loaded": False,
        "plan": None,
        "steps": 0,
        "work": [],
        "tools_used": [],
        "draft": None,
        "route": [],
    }


def described_plan(state: ThreadState, update: dict[str, Any]) -> dict[str, Any]:
    plan = update["plan"]
    return {"plan": plan["step"], "reason": plan["reason"]}


@reported("planning", described_plan)
async def planning(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Decide the next step. On the first pass, a logged-in user with memory on
    gets their memories loaded (once a turn)."""
    ctx, user_id = runtime.context, state.get("user_id")
    update: dict[str, Any] = {}
    if not state.get("memories_loaded"):
        memories: list[dict[str, Any]] = []
        if user_id and state.get("memory_enabled") and ctx.memory_loader is not None:
            query = state["query"]["content"]
            found = await ctx.load_memories(
                user_id, query, fresh=await saved_before_forgetting(state, ctx, query)
            )
            # This thread's own summary is what the window already holds.
            memories = [
                m
                for m in found
                if not (
                    m["kind"] == "summary" and m.get("source_session_id") == state["session_id"]
                )
            ]
            runtime.stream_writer(
                {
                    "type": "memory_loaded",
                    "user_id": user_id,
                    "memory_count": len(memories),
                    "memories": memories,
                }
            )
        update = {"loaded_memories": memories, "memories_loaded": True}
        state = {**state, **update}  # type: ignore[typeddict-item]
    situation = Situation(
        memory_tools=bool(tools_for(state, ctx)),
        model_picks_tools=can_use_tools(ctx.model),
        max_steps=ctx.max_steps,
        cancelled=cancelled(ctx),
    )
    plan = decide(state, situation)
    update["plan"] = plan
    if plan["reason"].startswith("step limit"):
        update["draft"] = {**(state.get("draft") or empty_draft()), "limit_reached": True}
    return update


async def saved_before_forgetting(state: ThreadState, ctx: TurnContext, query: str) -> bool:
    """For a request to forget: this thread's earlier turns saved first, when
    their save still waits (threads/memory_saver.py batches a busy thread's
    saves, a second apart): what to forget may have been said a moment ago,
    and a save after the turn would keep it. True when the save wrote something
    (the memories are then loaded again)."""
    if ctx.save_owed is None or not asks_to_forget(query):
        return False
    asked = ctx.journaled[0].seq if ctx.journaled is not None else None
    return await ctx.save_owed(state["session_id"], before_seq=asked)


# The two routers are coroutines: LangGraph runs a plain function on a worker
# thread, a hand-off to and from the event loop on every pass.
async def after_planning(state: ThreadState) -> str:
    plan = state.get("plan")
    return "response" if plan is None or plan["step"] == "respond" else "execution"


def described_pass(state: ThreadState, update: dict[str, Any]) -> dict[str, Any]:
    """The pass's number, the tools it ran, and whether it answered (the model
    wrote text and asked for no tools)."""
    ran = [used["name"] for used in update["tools_used"][len(state.get("tools_used", [])) :]]
    said_before = len((state.get("draft") or empty_draft())["content"])
    return {
        "pass": update["steps"],
        "tools": ran,
        "answered": not ran and len(update["draft"]["content"]) > said_before,
    }


@reported("execution", described_pass)
async def execution(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Take one step: run the planned tool, or call the model once (streamed),
    running the tools it asks for (at most MAX_CALLS_PER_STEP)."""
    ctx, plan = runtime.context, state["plan"]
    assert plan is not None
    write, tools = runtime.stream_writer, tools_for(state, ctx)
    work, used = list(state.get("work", [])), list(state.get("tools_used", []))
    draft: Draft = dict(state.get("draft") or empty_draft())  # type: ignore[assignment]
    steps = state.get("steps", 0) + 1
    if plan["step"] in TOOL_OF_STEP:
        name, call_id = TOOL_OF_STEP[plan["step"]], f"planned_{steps}"
        used += await run_planned(tools, name, plan["args"], work, write, call_id)
    else:
        offer = tools if plan["step"] == "tools" else []
        prompt = build_prompt(state, with_tools=bool(offer))
        try:
            reply = await ask_model(ctx, offer, prompt, write, draft)
        except ToolsRefused:
            return await without_tools(state, ctx, tools, write, draft, steps)
        calls = reply is not None and bool(reply.tool_calls or reply.invalid_tool_calls)
        if reply is not None and offer and calls and not cancelled(ctx):
            used += await use_tools(offer, reply, work, write, ctx.cancel)
    return {"work": work, "tools_used": used, "draft": draft, "steps": steps}


async def without_tools(
    state: ThreadState, ctx: TurnContext, tools: list[Any], write: Any, draft: Draft, steps: int
) -> dict[str, Any]:
    """The pass for a model that refuses tools: a memory request in the question
    (remember, forget, search) is recognised as the offline model's is and its
    tool run, then the model answers, told in words what was done (a model
    without function calling may not take tool messages either). The pass's
    plan becomes "answer", so planning ends the turn after it."""
    work, used = list(state.get("work", [])), list(state.get("tools_used", []))
    before, done = len(work), []
    intent = recognise(state["query"]["content"])
    fallback = tool_plan(intent, state.get("loaded_memories", [])) if intent else None
    if fallback is not None and fallback["step"] in TOOL_OF_STEP:
        name = TOOL_OF_STEP[fallback["step"]]
        used += await run_planned(tools, name, fallback["args"], work, write, f"planned_{steps}")
        done = [f"{name}: {m.content}" for m in work[before:] if isinstance(m, ToolMessage)]
    elif fallback is not None and intent is not None and forgets_everything(intent):
        done = [f"forget: nothing was forgotten; tell the user: {EVERYTHING}"]
    elif fallback is not None and intent is not None and intent.kind == "forget":
        done = [f"forget: no saved memory matches “{intent.topic}”; nothing was forgotten"]
    shown: list[AnyMessage] = work[:before]
    prompt = build_prompt({**state, "work": shown}, with_tools=False, done=done)
    await ask_model(ctx, [], prompt, write, draft)
    reason = fallback["reason"] if fallback else "no memory request in the question"
    return {
        "work": work,
        "tools_used": used,
        "draft": draft,
        "steps": steps,
        "plan": {"step": "answer", "reason": f"the model takes no tools; {reason}", "args": {}},
    }


async def after_execution(state: ThreadState) -> str:
    """Back to planning after a tool step; to response once answered (or
    cancelled), unless the model answered a request to forget without
    forgetting (planning then forgets it by pattern)."""
    last = (state.get("route") or [{}])[-1]
    if last.get("tools") or forget_left_undone(state):
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


def forgotten_after(state: ThreadState) -> str | None:
    """What a forget planned after the model's answer did, in words, if one ran."""
    after = [s for s in state.get("route", []) if str(s.get("reason", "")).startswith(AFTER_ANSWER)]
    used = state.get("tools_used", [])
    if not after or not used or used[-1]["name"] != "forget":
        return None
    return said_about("forget", used[-1]["args"], used[-1]["result"])


def final_text(state: ThreadState, draft: Draft) -> str:
    """The answer's text; when the step limit left the model without an answer,
    the answer says so."""
    last = (state.get("route") or [{}])[-1]
    if forgotten := forgotten_after(state):  # the model's answer, then what was done
        return f"{draft['content'].rstrip()}\n\n{forgotten}".strip()
    if not draft["limit_reached"] or last.get("answered"):
        return draft["content"]
    used = sorted({u["name"] for u in state.get("tools_used", [])})
    note = (
        f"I stopped after {state.get('steps', 0)} steps, the limit for one answer, "
        f"before I had an answer. Tools used: {', '.join(used) or 'none'}."
    )
    return f"{draft['content'].rstrip()}\n\n{note}" if draft["content"].strip() else note


@reported("response")
async def response(state: ThreadState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """Journal the answer with its steps, then fold the window into the summary
    when over budget. The memory save is owed from here (the session's
    `memory_saved_seq` is now behind its `last_seq`) and runs after `done`."""
    ctx, query = runtime.context, state["query"]
    draft = state.get("draft") or empty_draft()
    content = final_text(state, draft)
    plan = state.get("plan")
    elapsed_ms = int((time.time() - state.get("started_at", time.time())) * 1000)
    row, _ = await ctx.journal.append(
        state["session_id"],
        NewMessage(
            id=answer_id_for(query["id"]),
            role="assistant",
            content=content,
            tools_used=state.get("tools_used", []),
            processing_time_ms=elapsed_ms,
            token_count=draft["token_count"] or estimate_tokens(content),
            has_error=draft["error_message"] is not None,
            error_message=draft["error_message"],
            metadata={
                "reply_to": query["id"],
                "cancelled": cancelled(ctx),
                "memories": [memory_reference(m) for m in state.get("loaded_memories", [])],
                "plan": plan["step"] if plan else None,
                "steps": state.get("route", []),
                "limit_reached": draft["limit_reached"],
            },
        ),
    )
    runtime.stream_writer({"type": "message", "message": row.as_dict()})
    window = [*state.get("messages", []), AIMessage(content=row.content, id=row.id)]
    window, summary = await trim_window(ctx, window, state.get("summary", ""))
    return {"messages": window, "last_seq": row.seq, "summary": summary, **turn_cleared()}
