"""What the user told, found again: which of their statements (in this
thread's window or in the memories the prompt lists) answers a question about
them. The offline model's memory (graph/offline.py answers with it); the
patterns that read a statement are graph/statements.py's, the memory that
answers a question by the words they share graph/words.py's."""

from __future__ import annotations

import re
from collections.abc import Sequence

from graph.asked import MY_THING_ASKED, about_the_user
from graph.facts import names_given, second_person
from graph.prompts import MEMORIES_SECTION, RELEVANT
from graph.statements import (
    named_by,
    statements,
    statements_by_turn,
    statements_in_turns,
)
from graph.subjects import Statement
from graph.words import PAST, SOMEONE, not_summaries, stems, widened
from memory.same_fact import content_words

LISTED = 12  # what "What do you know about me?" lists at most


def all_about_them(earlier: list[tuple[str, str]], memories: list[tuple[str, str]]) -> str:
    """What this thread's window (`earlier`, the latest first) and the loaded
    memories say of the user: who and where they are and what they do first,
    then the rest as found, past conversations left out. Of a kind of fact, the
    latest said ("we moved to Hamburg" said now, "I live in Berlin" saved)."""
    first = _WHO_AND_WHERE
    known: list[str] = []
    kinds: set[str] = set()
    for group, said in [*earlier, *memories]:
        if group == PAST or said in known:
            continue
        kind = {st.subject for st in statements(said)} & set(first)
        if kind and kind <= kinds:
            continue  # a later statement of its kind is listed
        known.append(said)
        kinds |= kind
    if not known:
        return "I don't know anything about you yet. Tell me and I will remember it."

    def rank(said: str) -> int:
        subjects = [st.subject for st in statements(said)]
        return min((first.index(s) for s in subjects if s in first), default=len(first))

    known.sort(key=rank)  # stable: the rest keep the order they were found in
    listed = "; ".join(known[:LISTED])
    more = len(known) - LISTED
    return f"You told me: {listed}" + (f"; and {more} more things." if more > 0 else ".")


def remembered(system: str) -> list[tuple[str, str]]:
    """The memories the system prompt lists, as the user said them, each with
    the title of its group: those most relevant to this message first, best
    first (graph/prompts.py), then facts and preferences, people, past
    conversations."""
    lines = system.splitlines()
    if MEMORIES_SECTION not in lines:
        return []
    found, group = [], ""
    for line in lines[lines.index(MEMORIES_SECTION) + 1 :]:
        if not line.strip():
            break  # the end of the section
        if not line.startswith("- "):
            group = line
            continue
        said = line[2:].split(": ", 1)[1] if re.match(r"- m\d+: ", line) else line[2:]
        found.append((group, said.removeprefix("User said: ")))
    return found


# Of each kind of fact asked about, the subjects a statement of it is kept under
# (graph/statements.py: statements).
_SUBJECTS_OF = {
    "name": ("name",),
    "preferred name": ("preferred name",),
    "location": ("location",),
    "work": ("work",),
    "preference": ("likes ", "loves ", "prefers ", "enjoys "),
    "dislike": ("hates ", "dislikes "),
    "age": ("age",),
    "origin": ("origin",),
}
# Of a kind of fact no statement is kept under, what its statements say:
# where they lived before ("I used to live in London", "We moved to Toronto
# from Mumbai", "I don't live in Leeds anymore"; not "I've lived here for years").
_SAID_AS = {
    "previous location": re.compile(
        r"\bused to live\b|\b(?:i|we) lived\b|\b(?:was|were) living\b"
        r"|\b(?:moved|relocated)\b.*\bfrom\s+\S|\bno\s+longer\s+live\b"
        r"|\b(?:don't|don’t|do\s+not)\s+live\s+in\b.*\b(?:anymore|any\s+more)\b",
        re.IGNORECASE,
    ),
}
# The kinds of fact that say who and where the user is, in the order
# "What do you know about me?" lists them.
_WHO_AND_WHERE = ("name", "preferred name", "location", "origin", "work", "age")
_KIND_SUBJECTS = frozenset(subject for kind in _WHO_AND_WHERE for subject in _SUBJECTS_OF[kind])
# Kinds of fact said in many ways the patterns do not know ("I'm a software
# engineer", "I grew up in Recife"): when none is known by pattern, the memory
# recall found nearest may answer, marked as a guess. A name or an age is not
# guessed from something else.
GUESSED_KINDS = frozenset({"work", "location", "preference", "dislike", "origin"})
_THIS_THREAD = "Said in this conversation:"
# What the user said of a thing of theirs (or their household's): "My dog is
# …", "I have a dog called …", "I've got two cats", "I own a Volvo", "Our cat
# is …", "We just adopted a puppy".
_THEIR_THING = re.compile(
    r"^(?:(?:my|our)\s|(?:i|we)\s+(?:just\s+|recently\s+)?(?:have|own|have got|adopted|got"
    r"|bought)\s+(?:a|an|one|two|three|four|five|some|\d+)\s|(?:i|we)(?:'|’)ve\s+got\s)",
    re.IGNORECASE,
)
# What they rank is a liking, not a thing of theirs: "My favourite food is
# ramen" says nothing of a pet they may have.
_RANKED = re.compile(
    r"^(?:my|our)\s+(?:(?:all[- ]time|least)\s+)?(?:favourite|favorite|best|worst|usual)\b",
    re.IGNORECASE,
)


def told_of(kind: str, humans: list[str], memories: list[tuple[str, str]]) -> str | None:
    """What the user said of a kind of fact (name, home, work, age, likes), as
    they said it: the latest in this thread's window, else the first memory of
    that subject (a later statement of a subject supersedes the earlier)."""

    def of_kind(st: Statement) -> bool:
        if kind in _SAID_AS:
            return bool(_SAID_AS[kind].search(st.sentence))
        return st.subject.startswith(_SUBJECTS_OF[kind])

    for said_then in reversed(statements_by_turn(humans)):  # each read after the one before
        stated = [st.sentence for st in said_then if of_kind(st)]
        if stated:
            return stated[-1]
    for _, said in memories:
        if any(of_kind(st) for st in statements(said)):
            return said
    return None


# A town or country ("Leeds", "New York"), capitalised, as places are written.
_PLACE = r"\s+[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+)*"
# For a kind of place never told, the statement of another kind that names one:
# where they live from where they work ("I work as a nurse in Leeds"), where
# they are from from a move ("I moved to Toronto from Osaka").
_PLACED_BY = {
    "location": ("work", re.compile(r"\bin" + _PLACE)),
    "origin": ("location", re.compile(r"\bfrom" + _PLACE)),
}


def placed_by_another(kind: str, humans: list[str], memories: list[tuple[str, str]]) -> str | None:
    """For where the user lives or is from, when nothing says it: a statement of
    another kind that places them (`_PLACED_BY`), a better guess than recall's
    nearest memory, which shares only the question's meaning ("based", "city",
    "grow up") with anything."""
    if kind not in _PLACED_BY:
        return None
    other, names_a_place = _PLACED_BY[kind]
    told = told_of(other, humans, memories)
    return told if told is not None and names_a_place.search(told) else None


# "I'm a software engineer", "I'm an architect": what they are, said as a role.
_A_ROLE = re.compile(r"^(?:i am|i'm|i’m)\s+an?\s+(?P<what>[\w' -]+)$", re.IGNORECASE)
# What "I'm a …" says that is no job ("I'm a vegetarian", "I'm a mother of two").
_NO_JOB = frozenset(
    """vegetarian vegan pescatarian fan member beginner mother father mum mom dad parent
    grandmother grandfather grandparent wife husband partner sister brother daughter son
    twin big huge little bit lot""".split()  # noqa: SIM905 - words read better than a list
)


def role_said(humans: list[str], memories: Sequence[tuple[str, str]] = ()) -> str | None:
    """For what the user does, when no pattern placed it: the latest "I'm a …"
    said in this thread ("I'm a software engineer"), else the first remembered,
    a guess (a visitor or a memory-off thread has no memory recall could have
    ranked instead)."""
    texts = [*reversed(humans), *(said for _, said in not_summaries(list(memories)))]
    for text in texts:
        for said in reversed(statements(text)):
            role = _A_ROLE.match(said.sentence)
            if role and not _NO_JOB & set(role["what"].lower().split()):
                return said.sentence
    return None


def likings(
    humans: list[str],
    memories: list[tuple[str, str]],
    question: str = "",
    kind: str = "preference",
) -> list[str]:
    """Everything the user said they like, love, prefer or enjoy (or, `kind`
    "dislike", hate or do not like): this thread's window, the latest first,
    then the memories; of what `question` asks about when it names something
    (`liking_answers`)."""
    wanted = _SUBJECTS_OF[kind]
    said = [st.sentence for text in reversed(humans) for st in statements(text)]
    said += [text for _, text in not_summaries(memories)]
    return [
        text
        for text in said
        if any(st.subject.startswith(wanted) for st in statements(text))
        and liking_answers(question, text)
    ]


# "What do I like to eat?", "What do I love about my job?": what follows the
# verb names what is asked about; "doing" or "most" names nothing.
_LIKING_ASKED = re.compile(r"\bwhat do (?:i|we) (?:prefer|like|love|enjoy)\b(?P<about>.*)", re.I)
_NAMES_NOTHING = content_words("doing do most best really things stuff lately these days")


def liking_answers(question: str, said: str) -> bool:
    """Whether a liking the user stated answers a question about their likings:
    any does "What do I like?"; "What do I like to eat?" needs one that shares
    a word with what it asks about ("I love eating sushi", not "I love
    hiking", which leaves the question to recall's guess by meaning)."""
    asked = _LIKING_ASKED.search(question)
    about = stems(asked["about"]) - _NAMES_NOTHING if asked else frozenset()
    return not about or bool(about & stems(said))


def preferred_name(told: str, humans: list[str], memories: list[tuple[str, str]]) -> str:
    """The name the user asked to be called ("Call me Annie") or goes by
    ("Everyone calls me Alex"), the latest in this thread's window, else from a
    memory, when `told`, the statement of their name answering, gives another,
    said back ("You asked me to call you Annie.", "Everyone calls you Alex.");
    else ""."""
    for text in [*reversed(humans), *(said for _, said in memories)]:
        for st in statements(text):
            if st.subject == "preferred name" and (called := names_given(st.sentence)):
                if called[-1] in names_given(told):
                    return ""
                if _ASKED_TO_CALL.match(st.sentence):
                    return f"You asked me to call you {called[-1]}."
                return f"{second_person(st.sentence)}."
    return ""


_ASKED_TO_CALL = re.compile(r"^(?:please\s+)?call me\b", re.IGNORECASE)


def their_name(humans: list[str], memories: list[tuple[str, str]]) -> str | None:
    """What to call the user: the name they asked to be called, else their name
    (this thread's window first, then their memories), or None."""
    for kind in ("preferred name", "name"):
        told = told_of(kind, humans, memories)
        if told and (names := names_given(told)):
            return names[-1].title() if names[-1].islower() else names[-1]
    return None


def said_back(kind: str, told: str) -> str:
    """A fact the user told, said back: "Your name is Marta.", "You live in Porto."."""
    names = names_given(told) if kind == "name" else ()
    if not names:
        return f"{second_person(told)}."
    name = names[-1]  # "my name is john smith", typed in a hurry: John Smith
    return f"Your name is {name.title() if name.islower() else name}."


def said_earlier(humans: list[str]) -> list[tuple[str, str]]:
    """What the user said of themselves earlier in this thread's window, the
    latest first, as `remembered` lists memories (a visitor has no memories,
    and a logged-in user's newest are saved after the turn)."""
    by_text = statements_by_turn(humans)
    return [(_THIS_THREAD, st.sentence) for said in reversed(by_text) for st in said]


def people_named(humans: list[str], memories: list[tuple[str, str]]) -> frozenset[str]:
    """Who the user named in this thread's window and in their memories (not
    past conversations' summaries): what a sentence about them ("Leo is 7")
    may be about (graph/statements.py: statements)."""
    in_thread = statements_in_turns(humans)
    return named_by([st.sentence for st in in_thread] + [s for _, s in not_summaries(memories)])


def said_last(humans: list[str]) -> str:
    """The last thing the user said of themselves (or of theirs) in this
    thread's window, or "": what a message going on about it ("She's a
    nurse", after "My girlfriend is Sarah") is kept with."""
    in_thread = statements_in_turns(humans)
    return in_thread[-1].sentence if in_thread else ""


def closest_memory(question: str, memories: list[tuple[str, str]]) -> str | None:
    """For a question about the user that no memory answers in its words (one
    sharing none with any, or one of a kind of fact no pattern found): the
    memory recall ranked most relevant (found by meaning: "physician" for
    "doctor"), or None.

    Not one of a kind of fact (a statement the patterns placed answers a
    question of its own kind, `told_of`), and
    for a question about one of their things ("my pet") only what they said of
    one of theirs ("My dog is …", "I have a dog called …"). Recall ranks
    something first whatever is asked, so this is a guess, and the reply says
    so (`offline_reply`).
    """
    if not about_the_user(question):
        return None
    my_thing = MY_THING_ASKED.search(question) is not None
    # "How old is my daughter?": someone of theirs, whom the guess must speak of
    someone = widened(stems(question)) & SOMEONE
    for group, said in not_summaries(memories):
        if group != RELEVANT:
            break
        kinds = [st.subject for st in statements(said)]
        if kinds and kinds[0] in _KIND_SUBJECTS:
            continue
        if someone and not someone & stems(said):
            continue
        if not my_thing or (_THEIR_THING.match(said) and not _RANKED.match(said)):
            return said
    return None


_SUMMARY_LINE = re.compile(r"(?:^|\s)- user (said|asked): ")
_DATED = re.compile(r"^\((?P<day>\d{1,2} [A-Z][a-z]+ \d{4})\) ")


def last_conversation(memories: list[tuple[str, str]]) -> str:
    """The latest past conversation the memories hold (the prompt lists them
    latest first), said to the user: what they told and what they asked in it."""
    summary = next((said for group, said in memories if group == PAST), None)
    if summary is None:
        return "I don't remember an earlier conversation with you yet."
    dated = _DATED.match(summary)  # "(3 December 2026) …": graph/prompts.py
    when, summary = (f" ({dated['day']})", summary[dated.end() :]) if dated else ("", summary)
    parts = _SUMMARY_LINE.split(summary)
    if len(parts) < 3:  # a model's summary, in its own words
        return f"Last time{when}: {summary}"
    lines = list(zip(parts[1::2], parts[2::2], strict=True))
    told = [text.strip() for kind, text in lines if kind == "said"]
    asked = [text.strip() for kind, text in lines if kind == "asked"]
    said = [f"you told me: {'; '.join(told)}."] if told else []
    said += [f"You asked: {'; '.join(f'“{q}”' for q in asked)}"] if asked else []
    return f"Last time{when}, " + " ".join(said)
