"""After the answer: what a session taught us about its user, saved as memories.

Runs outside the thread's lock, after `done`. It is idempotent and owed until
done: the session's `memory_saved_seq` marks how far it got, so a process that
dies first leaves the work for the next start or the next turn.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from graph.facts import Statement, statements
from graph.offline import OfflineChatModel
from graph.prompts import EXTRACT_PROMPT
from graph.summary import Turn, summarize
from memory.journal import Journal
from memory.memories import MemoryDraft, MemoryStore
from memory.sessions import SessionStore

log = logging.getLogger(__name__)


class Extracted(BaseModel):
    """What the model found worth remembering in a stretch of conversation."""

    preferences: list[str] = Field(default_factory=list, description="'key: value' pairs")
    entities: list[str] = Field(default_factory=list, description="'name: what is known'")
    facts: list[str] = Field(default_factory=list, description="facts about the user")


def draft_from_statement(statement: Statement) -> MemoryDraft:
    """One memory per subject: a later statement of a subject supersedes the
    earlier (a new city, a new employer), different subjects stay apart."""
    return MemoryDraft(statement.kind, statement.subject[:200], f"User said: {statement.sentence}")


def keyed(kind: str, line: str) -> MemoryDraft:
    key, _, value = line.partition(":")
    if not value.strip():
        return MemoryDraft(kind, None, line.strip())
    return MemoryDraft(kind, key.strip().lower()[:200], line.strip())


async def extract_drafts(model: BaseChatModel, turns: Sequence[Turn]) -> list[MemoryDraft]:
    """Memories from the user's messages: patterns offline, structured output otherwise."""
    said = [content for role, content in turns if role == "user"]
    if not said:
        return []
    if isinstance(model, OfflineChatModel):
        return [draft_from_statement(st) for text in said for st in statements(text)]
    # Function calling: the most widely supported way across OpenAI-compatible servers.
    extractor = model.with_structured_output(Extracted, method="function_calling")
    found = await extractor.ainvoke(
        [SystemMessage(EXTRACT_PROMPT), HumanMessage("\n".join(f"- {t}" for t in said))]
    )
    assert isinstance(found, Extracted)
    return (
        [keyed("preference", p) for p in found.preferences]
        + [keyed("entity", e) for e in found.entities]
        + [MemoryDraft("fact", None, f) for f in found.facts if f.strip()]
    )


async def save_session_memories(
    model: BaseChatModel,
    sessions: SessionStore,
    journal: Journal,
    memories: MemoryStore,
    session_id: str,
) -> bool:
    """Extract and save what is owed for one session; False when nothing was written."""
    session = await sessions.get(session_id)
    if session.user_id is None or not session.memory_enabled:
        return False
    if session.memory_saved_seq >= session.last_seq:
        return False
    rows = await journal.between(session_id, session.memory_saved_seq + 1, session.last_seq)
    if not rows:
        return False
    turns = [(row.role, row.content) for row in rows]
    drafts = await extract_drafts(model, turns)
    previous = await memories.summary_of(session.user_id, session_id)
    summary = await summarize(model, previous, turns)
    if session.title and not summary.startswith("Conversation"):
        summary = f"Conversation “{session.title}”:\n{summary}"
    return await memories.save_from_session(
        session_id, session.user_id, drafts, summary, upto_seq=rows[-1].seq
    )
