"""The prompt: its text, and how a pass's messages are put together."""

from __future__ import annotations

from langchain_core.messages import AnyMessage, BaseMessage, SystemMessage

from graph.state import ThreadState

SYSTEM_PROMPT = """You are Threadline, a helpful assistant that remembers.
Answer the user's latest message. Use the conversation summary and the user's
long-term memories below when they are relevant; say where a remembered fact
came from when it matters. If you do not know something, say so."""

SUMMARY_SECTION = "Summary of the earlier conversation:\n{summary}"

MEMORIES_SECTION = (
    "What you remember about this user from past conversations "
    "(kind, content, source session):\n{memories}"
)

TOOLS_PROMPT = """You have tools for the user's long-term memory:
- search_past_conversations: look through the user's earlier conversations.
- remember: save something lasting about the user (when they ask you to, or
  state a stable fact, preference, person, place or project).
- forget: delete a memory by its id (the ids are listed with the memories).
Tell the user briefly what you saved or forgot."""

SUMMARIZE_PROMPT = """Update the running summary of a conversation.
Keep every fact the user stated about themselves (name, where they live, work,
preferences, people and projects), decisions made and open questions. Be brief:
at most 15 short lines. Reply with the new summary only."""

EXTRACT_PROMPT = """From the user's messages below, extract what is worth remembering
about the user for future conversations. preferences: 'key: value' pairs (for
example 'language: Python'); entities: people, places or projects as
'name: what is known'; facts: other stable facts about the user, as short
sentences. Leave a list empty when there is nothing for it."""


def build_prompt(state: ThreadState, *, with_tools: bool) -> list[BaseMessage]:
    """System prompt, then the summary and memories, then the window, then this
    turn's tool calls and results so far. With tools offered, the prompt says
    what they are for and shows each memory's id (which `forget` needs)."""
    parts = [SYSTEM_PROMPT]
    if state.get("loaded_memories"):
        lines = "\n".join(
            f"- [{m['kind']}] {m['content']} (from session {m.get('source_session_id')}"
            + (f"; id {m.get('id')})" if with_tools else ")")
            for m in state["loaded_memories"]
        )
        parts.append(MEMORIES_SECTION.format(memories=lines))
    if state.get("summary"):
        parts.append(SUMMARY_SECTION.format(summary=state["summary"]))
    if with_tools:
        parts.append(TOOLS_PROMPT)
    window: list[AnyMessage] = state.get("messages", [])
    work: list[AnyMessage] = state.get("work", [])
    return [SystemMessage("\n\n".join(parts)), *window, *work]
