"""Planning's decision: what the next execution pass does, and why.

A pure function of the turn so far (the question, the loaded memories, the
previous plan and what its pass did); no model call. See docs/design.md,
"The supervisor loop".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from graph.intents import Intent, forgets_everything, recognise, words
from graph.remember import draft_from_statement
from graph.state import TOOL_OF_STEP, Plan, Step, ThreadState
from graph.statements import statements


@dataclass(frozen=True)
class Situation:
    """What planning knows besides the state."""

    memory_tools: bool  # the memory tools may be used in this session
    model_picks_tools: bool  # the model can be offered tools (not the offline one)
    max_steps: int  # execution passes a turn may take
    cancelled: bool


def plan(step: Step, reason: str, args: dict[str, Any] | None = None) -> Plan:
    return {"step": step, "reason": reason, "args": args or {}}


def decide(state: ThreadState, situation: Situation) -> Plan:
    """The next step. On the first pass: what the question needs. After a pass
    that ran tools: answer from their results, or let the model go on, within
    the step limit."""
    if situation.cancelled:
        return plan("respond", "cancelled by the user")
    draft, last, steps = state.get("draft"), state.get("plan"), state.get("steps", 0)
    if draft is not None and draft["error_message"]:
        return plan("respond", "the model failed mid-answer")
    if last is None:
        return first_plan(state, situation)
    if last["step"] in TOOL_OF_STEP:
        if last["reason"].startswith(AFTER_ANSWER):
            return plan("respond", "answered, and forgotten as asked")
        return plan("answer", f"answer from what {TOOL_OF_STEP[last['step']]} returned")
    if last["step"] == "tools" and not (state.get("route") or [{}])[-1].get("tools"):
        # The model answered without its tools. Asked to forget, it should have
        # called `forget` (weak models do not always): forgotten by pattern.
        undone = forget_left_undone(state)
        if undone is None:
            return plan("respond", "answered")
        net = tool_plan(undone, state.get("loaded_memories", []))
        if net["step"] != "forget":
            return plan("respond", f"answered; {net['reason']}")
        return plan("forget", f"{AFTER_ANSWER}; {net['reason']}", net["args"])
    if last["step"] == "tools":
        if steps + 1 >= situation.max_steps:
            return plan("answer", f"step limit ({situation.max_steps} steps): answer without tools")
        return plan("tools", "the model called tools; it decides the next step")
    return plan("respond", "answered")


_SPEAKS_OF_FORGETTING = re.compile(
    r"\b(?:forg[eo]t(?:ten|ting)?|removed?|deleted?|erased?)\b", re.IGNORECASE
)
# The reason of a forget planned after the model's answer (see `decide`).
AFTER_ANSWER = "after the answer, as the model did not forget"


def forget_left_undone(state: ThreadState) -> Intent | None:
    """The question's request to forget, when the pass that offered the model
    its tools ended without a `forget` (and without a failure), its answer
    speaking of forgetting ("Done, I've forgotten that"): an answer that took
    "Forget the weather, tell me about Rome" as the talk it is stands."""
    last, draft = state.get("plan"), state.get("draft")
    if last is None or last["step"] != "tools" or draft is None or draft["error_message"]:
        return None
    if not _SPEAKS_OF_FORGETTING.search(draft["content"]):
        return None
    if any(used["name"] == "forget" for used in state.get("tools_used", [])):
        return None
    intent = recognise(state["query"]["content"])
    return intent if intent is not None and intent.kind == "forget" else None


def first_plan(state: ThreadState, situation: Situation) -> Plan:
    if not situation.memory_tools:
        return plan("answer", "no memory tools in this session")
    if situation.model_picks_tools:
        return plan("tools", "the model may search, remember or forget")
    intent = recognise(state["query"]["content"])
    if intent is None:
        return plan("answer", "no memory request in the question")
    return tool_plan(intent, state.get("loaded_memories", []))


def tool_plan(intent: Intent, memories: list[dict[str, Any]]) -> Plan:
    """The tool step for a recognised request (the offline model's way in)."""
    if intent.kind == "search":
        return plan(
            "search",
            f"asked to search past conversations for “{intent.topic}”",
            {"query": intent.topic},
        )
    if intent.kind == "remember":
        said = statements(intent.topic)
        if len(said) == 1:  # keyed as the after-turn extraction keys it, so they merge
            draft = draft_from_statement(said[0])
            args = {"content": draft.content, "kind": draft.kind, "key": draft.key}
        else:
            args = {"content": f"User said: {intent.topic}", "kind": "fact", "key": None}
        return plan("remember", "asked to remember something", args)
    if forgets_everything(intent):
        return plan("answer", "asked to forget everything: one memory at a time, or from the panel")
    target = best_match(intent.topic, memories)
    if target is None:
        return plan("answer", f"no loaded memory matches “{intent.topic}”")
    return plan(
        "forget",
        f"asked to forget; closest memory: “{target['content'][:80]}”",
        {"memory_id": target["id"]},
    )


def best_match(topic: str, memories: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The loaded memory (not a conversation summary) sharing the most words
    with `topic`, if it shares at least half of them: "Forget the weather,
    tell me about Rome" does not name "I visited Rome last year"."""
    wanted = words(topic)
    best: tuple[int, float, dict[str, Any]] | None = None
    for memory in memories:
        if memory.get("kind") == "summary":
            continue
        said = words(str(memory["content"]))
        shared = len(wanted & said)
        if (
            shared * 2 >= len(wanted)
            and shared
            and (best is None or (shared, shared / len(said)) > best[:2])
        ):
            best = (shared, shared / len(said), memory)
    return best[2] if best else None
