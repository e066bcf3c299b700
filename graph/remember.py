"""After the answer: what a session taught us about its user, saved as memories.

Runs outside the thread's lock, after `done`. It is idempotent and owed until
done: the session's `memory_saved_seq` marks how far it got, so a process that
dies first leaves the work for the next start or the next turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from graph.asked import about_the_user
from graph.draft import REFUSED
from graph.intents import asks_to_forget
from graph.llm import warn_once
from graph.offline import OfflineChatModel
from graph.prompts import LEARN_PROMPT
from graph.statements import greeting_alone, named_by, statements_in_turns
from graph.subjects import Statement
from graph.summary import SAID_LINE, SUMMARY_MAX_CHARS, Turn, fold_facts
from memory.memories import MemoryDraft, MemoryStore
from memory.owed import owed_save


class NewMemory(BaseModel):
    """One new thing learned about the user."""

    kind: Literal["fact", "preference", "entity"] = Field(
        description="fact, preference, or entity (a person, place or project)"
    )
    subject: str = Field(
        description="what it is about, in 1 to 4 words ('home city', 'employer', 'language')"
    )
    content: str = Field(description="one short sentence about the user")


class MemoryUpdate(BaseModel):
    """An existing memory the conversation changed."""

    ref: str = Field(description="the memory's reference as listed (m1, m2, …)")
    content: str = Field(description="the memory as it now stands, one short sentence")


class Learned(BaseModel):
    """Everything one conversation taught, from one call."""

    new: list[NewMemory] = Field(
        default_factory=list,
        description="lasting facts, preferences and entities not already known",
    )
    updates: list[MemoryUpdate] = Field(
        default_factory=list,
        description="known memories the conversation changed (a new city, a new employer)",
    )
    summary: str = Field(
        "",
        description="the conversation in at most 10 short lines; empty when it held "
        "nothing worth keeping (greetings, trivia, one-off questions)",
    )


@dataclass
class Lessons:
    """What to save for one stretch of a session."""

    drafts: list[MemoryDraft]
    updates: dict[str, str]  # memory id -> its new content
    summary: str | None  # None: nothing worth a summary


def draft_from_statement(statement: Statement) -> MemoryDraft:
    """One memory per subject: a later statement of a subject supersedes the
    earlier (a new city, a new employer), different subjects stay apart."""
    return MemoryDraft(statement.kind, statement.subject[:200], f"User said: {statement.sentence}")


def worth_keeping(said: list[str], drafts: list[MemoryDraft]) -> bool:
    """Offline: a session is worth a summary when the user said something about
    themselves, or more than a few words besides asking what they told before
    ("Where do I live?") or to forget something."""
    talk = [text for text in said if not (about_the_user(text) or asks_to_forget(text))]
    return bool(drafts) or sum(len(text.split()) for text in talk) >= 12


def learn_by_pattern(previous: str, turns: Sequence[Turn], asked_before: str = "") -> Lessons:
    """The offline model's lessons: every first-person statement, one memory
    per subject, and the summary folded from them (graph/summary.py).
    `asked_before`: the user's message before the turns, saved before them
    ("hey" before "im lucas": an introduction)."""
    said = [content for role, content in turns if role == "user"]
    # Who they named in the thread's turns saved before (its summary's "user
    # said" lines): a sentence about one of them now ("Leo is 7") is kept too.
    # And what they said last: "She's a nurse" goes on about it.
    lines = previous.splitlines()
    told = [line.removeprefix(SAID_LINE) for line in lines if line.startswith(SAID_LINE)]
    named = named_by(told)
    drafts = [
        draft_from_statement(st)
        for st in statements_in_turns(
            said, named, told[-1] if told else "", greeting_alone(asked_before)
        )
    ]
    # A session summed up before goes on being: what it goes on to ask is kept too.
    folded = fold_facts(previous, turns)
    worth = worth_keeping(said, drafts) or (previous != "" and folded != previous)
    return Lessons(drafts, {}, folded if worth else None)


async def learn_with_model(
    model: BaseChatModel, previous: str, turns: Sequence[Turn], known: list[dict[str, Any]]
) -> Lessons:
    """One structured call: the new memories, the updates to the known ones
    most like this conversation (given with short references), the summary."""
    refs = {f"m{n}": m for n, m in enumerate(known, start=1)}
    listing = "\n".join(f"- {ref}: {m['content']}" for ref, m in refs.items()) or "(none)"
    transcript = "\n".join(f"{role}: {content}" for role, content in turns)
    learner = model.with_structured_output(Learned, method="function_calling")
    try:
        found = await learner.ainvoke(
            [
                SystemMessage(LEARN_PROMPT),
                HumanMessage(
                    f"Known memories about the user:\n{listing}\n\n"
                    f"Summary so far:\n{previous or '(none)'}\n\nNew messages:\n{transcript}"
                ),
            ]
        )
    except (OutputParserException, ValidationError, *REFUSED):
        found = None  # arguments not the schema's, or a model that refuses functions
    if not isinstance(found, Learned):
        # An endpoint whose model does not call functions (many local servers)
        # answers in plain text, or 400 to the function: what the user said is
        # still learned, as the offline model learns it, and the save is done,
        # not owed forever.
        warn_once(model, "gives no structured lessons: learned by pattern instead")
        return learn_by_pattern(previous, turns)
    drafts = [
        MemoryDraft(n.kind, n.subject.strip().lower()[:200] or None, n.content)
        for n in found.new
        if n.content.strip()
    ]
    updates = {
        str(refs[u.ref.strip().lower()]["id"]): u.content
        for u in found.updates
        if u.ref.strip().lower() in refs and u.content.strip()
    }
    summary = found.summary.strip()[:SUMMARY_MAX_CHARS] or None
    return Lessons(drafts, updates, summary)


async def save_session_memories(
    model: BaseChatModel, memories: MemoryStore, session_id: str, *, before_seq: int | None = None
) -> bool:
    """Extract and save what is owed for one session (with `before_seq`, what
    came before that message); False when nothing was written."""
    owed = await owed_save(memories.db, session_id, before_seq=before_seq)  # SessionNotFound
    if owed.user_id is None or not owed.memory_enabled or not owed.turns:
        return False
    turns = owed.turns
    if isinstance(model, OfflineChatModel):
        lessons = learn_by_pattern(owed.summary, turns, owed.asked_before)
    else:
        said = " ".join(content for role, content in turns if role == "user")
        known = await memories.load_relevant(owed.user_id, said[:2000], summaries=0)
        lessons = await learn_with_model(model, owed.summary, turns, known)
    summary = lessons.summary
    # Titled by the thread's title, unless that asks to forget something (a
    # thread begun with "Forget that I …" would keep it in every later prompt).
    titled = owed.title and not asks_to_forget(owed.title)
    if summary and titled and not summary.startswith("Conversation"):
        summary = f"Conversation “{owed.title}”:\n{summary}"
    return await memories.save_from_session(
        session_id,
        owed.user_id,
        lessons.drafts,
        summary,
        upto_seq=owed.upto_seq,
        updates=lessons.updates,
    )
