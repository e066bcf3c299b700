"""What the user told, found again: which of their statements (in this
thread's window or in the memories the prompt lists) answers a question about
them. The offline model's memory (graph/offline.py answers with it); the
patterns that read a statement are graph/statements.py's."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from graph.asked import ASKS, MY_THING_ASKED, about_the_user
from graph.facts import names_given, second_person
from graph.prompts import MEMORIES_SECTION, MEMORY_GROUPS, RELEVANT
from graph.statements import (
    Statement,
    named_by,
    names_in,
    statements,
    statements_by_turn,
    statements_in_turns,
)
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
        if group == _PAST or said in known:
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


def once_each(said: list[str]) -> list[str]:
    """Statements to acknowledge, none that another says already ("My husband
    is Dev" after "I'm based in Leeds with my husband Dev")."""
    words = [content_words(sentence) for sentence in said]
    return [
        sentence
        for n, sentence in enumerate(said)
        if not any(
            m != n and words[n] <= other and (words[n] != other or m < n)  # equal: the first
            for m, other in enumerate(words)
        )
    ]


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
_PAST = next(title for title, kinds in MEMORY_GROUPS if "summary" in kinds)
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
# Who a user who says "I'm married to …" (or engaged) is asking about.
_SPOUSE = content_words("wife husband spouse fiance fiancee fiancé fiancée wedding")
_MARRIED = content_words("married engaged")
# Words that ask, or address the assistant, rather than say what is asked
# about, as memory.same_fact stems them ("name" is "nam"): left out of word
# matching, beside the wording words content_words leaves out itself.
_ASKED = content_words(
    ASKS.replace("|", " ") + " tell know remember again please name call you your we our"
    " this it or about"
)
# How they feel about a thing, not what it is: "What music do I like?" is not
# answered by "I like to eat jollof rice" (but when nothing else is found, it
# is the guess: `liked_alike`).
_FEELINGS = content_words("like likes love loves enjoy enjoys prefer prefers")
# A word that names a kind of someone or something, for the words a statement
# names them by: "Do I have any pets?" is answered by "I have two cats",
# "Do I have kids?" by "My son Max is 5".
_FAMILY = (
    "wife husband partner spouse son daughter child kids baby brother sister "
    "mum mom mother dad father"
)
_KINDS_OF = {
    kind: content_words(words)
    for kind_word, words in {
        "pet": "dog dogs cat cats puppy kitten fish hamster rabbit parrot bird horse tortoise",
        "kid": "son sons daughter daughters child baby",
        "children": "son sons daughter daughters child baby",
        "sibling": "brother brothers sister sisters",
        "parent": "mum mom mother dad father",
        "family": _FAMILY,
    }.items()
    # as a question's words are stemmed, one or more: "sibling", "siblings"
    for kind in content_words(kind_word) | content_words(f"{kind_word}s")
}
# The words that name someone in their family: a guess for a question about
# one of them must speak of one. (Not a pet: a gecko has no word here.)
_SOMEONE = content_words(f"{_FAMILY} fiance fiancee fiancé fiancée girlfriend boyfriend")
# Words that rank or date a thing without naming it: "my favourite colour"
# is not answered by "My favourite food is ramen".
_NOT_A_SUBJECT = content_words(
    "favourite favorite best worst first last new old main usual current previous"
)


def stems(text: str) -> frozenset[str]:
    """What `text` names, stemmed as memory.same_fact compares memories
    ("married" and "marries" meet), words of asking left out: what a question
    and a memory share. The same memories and window statements are compared
    at every question: a text of a usual length is stemmed once (the last
    4,096 held)."""
    return _stems_of(text) if len(text) <= 1000 else _stems_in(text)


def _stems_in(text: str) -> frozenset[str]:
    spelled = _SHORT.sub(lambda word: _SPELLED[word[0].lower()], text)
    return content_words(spelled) - _ASKED - _FEELINGS


# Words typed short, as they are meant: "my bday" is "my birthday".
_SPELLED = {
    "bday": "birthday",
    "b-day": "birthday",
    "bf": "boyfriend",
    "gf": "girlfriend",
    "hubby": "husband",
    "bro": "brother",
    "sis": "sister",
    "fav": "favourite",
    "fave": "favourite",
    "favorite": "favourite",
    "mom": "mum",
}
_SHORT = re.compile(rf"\b(?:{'|'.join(map(re.escape, _SPELLED))})\b", re.IGNORECASE)


_stems_of = functools.lru_cache(maxsize=4096)(_stems_in)


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
    texts = [*reversed(humans), *(said for _, said in _not_summaries(list(memories)))]
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
    said += [text for _, text in _not_summaries(memories)]
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
    return named_by([st.sentence for st in in_thread] + [s for _, s in _not_summaries(memories)])


def said_last(humans: list[str]) -> str:
    """The last thing the user said of themselves (or of theirs) in this
    thread's window, or "": what a message going on about it ("She's a
    nurse", after "My girlfriend is Sarah") is kept with."""
    in_thread = statements_in_turns(humans)
    return in_thread[-1].sentence if in_thread else ""


def best_memory(question: str, memories: list[tuple[str, str]]) -> str | None:
    """The memory that answers a question that is not about a kind of fact
    (those are `told_of`) in the question's own words, or None.

    The memory sharing the most words with the question, in the prompt's order
    on a tie (a question not about the user needs two: one shared word,
    "France", does not answer "What is the capital of France?"). Past
    conversations' summaries answer nothing here: they share words with
    everything.
    """
    memories = _not_summaries(memories)
    asked = _widened(stems(question) - _NOT_A_SUBJECT)
    shared = [len(asked & stems(said)) for _, said in memories]
    most = max(shared, default=0)
    kinds = stems(question) & _KINDS_OF.keys()
    if kinds and about_the_user(question):  # "Tell me about my family": each one told of
        words = frozenset().union(*(_KINDS_OF[kind] for kind in kinds))
        each = once_each([said for _, said in memories if words & stems(said)])
        if len(each) > 1:
            return "; ".join(each[:5])
    if most >= (1 if about_the_user(question) else 2):
        # Of those sharing as many words, one that is about what is asked ("My
        # birthday is on the 14th of July") before one that mentions it ("I just
        # had my birthday"); else the prompt's order.
        tied = [said for (_, said), n in zip(memories, shared, strict=True) if n == most]
        return next((said for said in tied if _subject_asked(said, asked)), tied[0])
    # "When is the baby due?": one word, but one they spoke of as known ("the
    # baby" after "our first baby"); "the capital" of France names nothing of theirs.
    known = _widened(stems(" ".join(_THE_THING.findall(question))) - _NOT_A_SUBJECT)
    spoken_of = [said for _, said in memories if known & stems(said)]
    if most == 1 and spoken_of:
        return spoken_of[0]
    # "Who is Sam?", "How old is Mia?": someone the user named ("My partner's
    # name is Sam"), by name (the question's capitalised words; all of a
    # "who is …" question's, in any case: "who is sam").
    named = names_in(question, first=False)
    if who := _WHO_IS.match(question.strip()):  # the names asked for, in any case:
        asked_for = {name.lower() for name in _AND.split(who["names"])} - _PRONOUNS
        found = (said for _, said in memories if asked_for & set(_WORD.findall(said.lower())))
        if (said := next(found, None)) is not None:  # "my girlfriend is called emma"
            return said
    if named:  # what they said of them ("Tom is a teacher") before what names them
        naming = [said for _, said in memories if named & names_in(said)]
        about = (said for said in naming if said.split(maxsplit=1)[0].lower() in named)
        return next(about, naming[0] if naming else None)
    return None


def _widened(asked: frozenset[str]) -> frozenset[str]:
    """The words a question asks about, with those a memory of it may say instead."""
    if asked & _SPOUSE:  # "What's my wife's name?", "the wedding": "I'm married to Anna"
        asked |= _MARRIED
    if asked & _MARRIED:  # "Am I married?": "My husband is Pedro"
        asked |= _SPOUSE
    for kind in asked & _KINDS_OF.keys():  # "pets": "dog", "cat", …
        asked |= _KINDS_OF[kind]
    return asked


def _subject_asked(said: str, asked: frozenset[str]) -> bool:
    """Whether the first thing `said` states is a thing the question names (its
    subject "birthday", not "i had my birthday": what they did)."""
    found = statements(said)
    subject = found[0].subject if found else ""
    return (
        not subject.startswith(("i ", "we ")) and bool(stems(subject)) and stems(subject) <= asked
    )


def liked_alike(question: str, memories: list[tuple[str, str]]) -> str | None:
    """For a question about how they feel about something that no memory
    answers by its subject or by meaning ("What food do I love?", on a database
    without vectors): a memory saying the same feeling ("I love sushi"), or None."""
    felt = content_words(question) & _FEELINGS
    if not felt or not about_the_user(question):
        return None
    return next((said for _, said in _not_summaries(memories) if felt & content_words(said)), None)


# The thing a question speaks of as known: "the baby", "the wedding".
_THE_THING = re.compile(r"\bthe\s+([\w'’-]+)", re.IGNORECASE)
# "Who is Sam?", "who's anna", "Who are Anna and Meera?": asks about people by
# the names alone ("Who is the president of France?" names no one of theirs).
_WHO_IS = re.compile(
    r"^who(?:'s|’s|\s+is|\s+are|\s+was)\s+(?P<names>[\w'’-]+(?:\s*(?:,|and|&)\s*[\w'’-]+)*)"
    r"\s*\??$",
    re.IGNORECASE,
)
_AND = re.compile(r"\s*(?:,|\band\b|&)\s*", re.IGNORECASE)
_WORD = re.compile(r"[\w'’-]+")
_PRONOUNS = {"you", "it", "he", "she", "they", "this", "that", "me", "we", "there", "here"}


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
    someone = _widened(stems(question)) & _SOMEONE
    for group, said in _not_summaries(memories):
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


def _not_summaries(memories: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(group, said) for group, said in memories if group != _PAST]


_SUMMARY_LINE = re.compile(r"(?:^|\s)- user (said|asked): ")
_DATED = re.compile(r"^\((?P<day>\d{1,2} [A-Z][a-z]+ \d{4})\) ")


def last_conversation(memories: list[tuple[str, str]]) -> str:
    """The latest past conversation the memories hold (the prompt lists them
    latest first), said to the user: what they told and what they asked in it."""
    summary = next((said for group, said in memories if group == _PAST), None)
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
