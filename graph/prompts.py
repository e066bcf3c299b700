"""The prompt: its text, and how a pass's messages are put together."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage

from graph.facts import names_given
from graph.state import ThreadState

SYSTEM_PROMPT = """You are Threadline, a helpful assistant that remembers.
Answer the user's latest message. Use the conversation summary and the user's
long-term memories below when they are relevant; say where a remembered fact
came from when it matters. If you do not know something, say so."""

SUMMARY_SECTION = "Summary of the earlier conversation:\n{summary}"

MEMORIES_SECTION = "What you remember about this user from past conversations:"
# The memory groups, in the order the prompt shows them; each memory on one line.
RELEVANT = "Most relevant to this message:"
MEMORY_GROUPS = (
    ("About the user (facts and preferences):", ("fact", "preference")),
    ("People, places and projects:", ("entity",)),
    ("Past conversations:", ("summary",)),
)

TOOLS_PROMPT = """You have tools for the user's long-term memory:
- search_past_conversations: look through the user's earlier conversations.
- remember: save something lasting about the user (when they ask you to, or
  state a stable fact, preference, person, place or project).
- forget: delete a memory by its reference (m1, m2, … as listed with the memories).
Tell the user briefly what you saved or forgot."""

# For a model that takes no tools, what was done for the message, in words.
DONE_PROMPT = "Done for this message with the user's memory (tell the user briefly):"

SUMMARIZE_PROMPT = """Update the running summary of a conversation.
Keep every fact the user stated about themselves (name, where they live, work,
preferences, people and projects), decisions made and open questions. Be brief:
at most 15 short lines. Reply with the new summary only."""

LEARN_PROMPT = """From the conversation below, learn what is worth remembering
about the user for future conversations, one memory per fact.
- new: lasting facts about the user, their preferences, and the people, places
  and projects in their life, that the known memories do not already say. Do
  not repeat a known memory in other words. Skip trivia and one-off questions.
- updates: a known memory the conversation changed (they moved, changed jobs,
  changed their name): its reference and how it now stands.
- summary: the conversation in at most 10 short lines, building on the summary
  so far; leave it empty when the conversation held nothing worth keeping.
Leave out anything the user asked you to forget, and the request itself."""


def memory_refs(memories: list[dict[str, Any]]) -> dict[str, str]:
    """Short references for the loaded memories (m1, m2, …) to their ids: the
    prompt shows these, and `forget` takes them."""
    return {f"m{n}": str(m["id"]) for n, m in enumerate(memories, start=1)}


def memories_section(memories: list[dict[str, Any]], *, with_refs: bool) -> str:
    """The memories, one line each, the ones relevant to the message first,
    then facts and preferences, people and projects, and past conversations."""
    refs = {str(m["id"]): f"m{n}" for n, m in enumerate(memories, start=1)}

    def line(memory: dict[str, Any]) -> str:
        text = " ".join(str(memory["content"]).split())
        if memory["kind"] == "summary" and (day := day_of(memory.get("updated_at"))):
            text = f"({day}) {text}"  # when it was: "last week" is a date to read
        return f"- {refs[str(memory['id'])]}: {text}" if with_refs else f"- {text}"

    parts = [MEMORIES_SECTION]
    relevant = [m for m in memories if m.get("relevant") and m["kind"] != "summary"]
    if relevant:
        parts += [RELEVANT, *map(line, relevant)]
    for title, kinds in MEMORY_GROUPS:
        group = [m for m in memories if m["kind"] in kinds and m not in relevant]
        if "summary" in kinds:  # the latest first: "last time" is the first
            group.sort(key=lambda m: str(m.get("updated_at", "")), reverse=True)
        if group:
            parts += [title, *map(line, group)]
    return "\n".join(parts)


def day_of(stamp: Any) -> str | None:
    """ "3 December 2026" for a memory's ISO timestamp, or None."""
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        return None
    return f"{when.day} {when:%B %Y}"


def users_name(state: ThreadState) -> str | None:
    """The user's name, when a loaded memory or the window says it."""
    texts = [str(m["content"]) for m in state.get("loaded_memories", []) if m["kind"] == "fact"]
    texts += [str(m.content) for m in state.get("messages", []) if m.type == "human"]
    names = [name for text in texts for name in names_given(text)]
    return names[-1] if names else None


def build_prompt(
    state: ThreadState, *, with_tools: bool, done: list[str] | None = None
) -> list[BaseMessage]:
    """System prompt (with today's date and the user's name when known), then
    the memories and the summary, then the window, then this turn's tool calls
    and results so far. With tools offered, the prompt says what they are for
    and gives each memory its short reference. `done`: what was done for the
    message, in words, for a model that takes no tools (graph/nodes.py)."""
    about = f"Today is {date.today():%A, %d %B %Y}."
    if name := users_name(state):
        about += f" The user's name is {name}."
    parts = [SYSTEM_PROMPT, about]
    if state.get("loaded_memories"):
        parts.append(memories_section(state["loaded_memories"], with_refs=with_tools))
    if state.get("summary"):
        parts.append(SUMMARY_SECTION.format(summary=state["summary"]))
    if with_tools:
        parts.append(TOOLS_PROMPT)
    if done:
        parts.append("\n".join([DONE_PROMPT, *(f"- {line}" for line in done)]))
    work: list[AnyMessage] = state.get("work", [])
    return [SystemMessage("\n\n".join(parts)), *alternating(state.get("messages", [])), *work]


NO_ANSWER = "(No answer was given to this message: the model failed.)"


def alternating(window: list[AnyMessage]) -> list[AnyMessage]:
    """The window with user and assistant turns alternating, as chat templates
    require: a question whose turn failed (no answer journaled) is followed by
    a note saying so."""
    shown: list[AnyMessage] = []
    for message in window:
        if shown and message.type == "human" and shown[-1].type == "human":
            shown.append(AIMessage(content=NO_ANSWER))
        shown.append(message)
    return shown
