"""One memory per fact: whether a new memory says what one of the user's
memories already says, in other words ("User said: my name is Theodora",
"The user's name is Theodora").

Two tests, both needed. The embeddings (memory/vectors.py) find the user's
memories of the same kind nearest the new one, above `SAME_FACT_SIMILARITY`;
then the two must name the same things: the same content words once the
wording is set aside. The second test is there because a small embedding model
cannot tell a paraphrase from a changed fact on its own: measured with the
local model (multilingual-e5-small), 15 paraphrases of one fact scored
0.921-0.974 while 17 pairs that differ in one thing ("I live in Oslo" / "I
live in Bergen", "my sister lives in Oslo" / "my brother lives in Oslo",
"I like tea" / "I don't like tea") scored 0.928-0.983: no threshold keeps
them apart. Their words do: on those pairs and a few more (21 paraphrases, 22
near misses), the two tests together found 16 paraphrases the same and no
near miss.

The word test errs towards keeping both: different words for the same thing
("named" and "called" aside) keep two memories, which costs a line of the
prompt; merging two facts would lose one. It cannot tell who did what to whom
("Anna works for me" / "I work for Anna").
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from memory.embeddings import Vector
from memory.vectors import nearest_of_kind, vector_literal

# Chosen on the pairs above: below every paraphrase measured (lowest 0.921),
# so the word test decides those; unrelated facts of one user scored up to
# 0.885 ("The user's name is Theodora" / "The user lives in Tromsø"), and are
# not even compared word by word. Another model (THREADLINE_EMBEDDINGS=openai)
# spreads its scores wider and lower: it then finds fewer candidates, and
# stores a paraphrase twice rather than merge two facts.
SAME_FACT_SIMILARITY = 0.90
CANDIDATES = 5  # the nearest memories of the kind compared word by word

_WORD = re.compile(r"\w+", re.UNICODE)
_NEGATION = re.compile(r"n['’]t\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+")
# How a memory is framed and linked, not what it says; negations ("not",
# "never", "no") are content and stay.
_WORDING = frozenset(
    """a an the i me my mine myself m s ve ll d user users said says told mentioned noted
    wrote is am are was were be been being has have had do does did that to in at on for of
    as by and also currently called named""".split()  # noqa: SIM905 - a paragraph reads better
)
_SUFFIXES = ("ing", "ies", "ied", "es", "ed", "s", "ic", "y", "e")


def _stem(word: str) -> str:
    """Lived, lives and live alike; names (capitalised) and other scripts as they are."""
    lowered = word.lower()
    if not word.isascii() or not word.islower():
        return lowered
    for suffix in _SUFFIXES:
        if lowered.endswith(suffix) and len(lowered) - len(suffix) >= 3:
            return lowered[: -len(suffix)]
    return lowered


def content_words(content: str) -> frozenset[str]:
    """What a memory names, wording aside: "The user's sister lives in Oslo"
    and "User said: my sister lives in Oslo" both give {sister, liv, oslo}."""
    words = set()
    for word in _WORD.findall(_NEGATION.sub(" not", content)):
        if word.lower() in _WORDING:
            continue
        number = _NUMBER.match(word)
        words.add(number.group() if number else _stem(word))
    return frozenset(words)


def says_the_same(content: str, other: str) -> bool:
    """Whether two memories the embeddings found alike also name the same things."""
    return content_words(content) == content_words(other)


_NEGATIONS = frozenset({"not", "no", "never"})


def said_within(fact: str, line: str) -> bool:
    """Whether `line` says `fact`, perhaps among other things: it names all the
    fact names (two things at least: one shared word is not the fact) and is
    negated alike ("User doesn't like early starts" does not say "User likes
    early starts")."""
    named, told = content_words(fact), content_words(line)
    return len(named) >= 2 and named <= told and named & _NEGATIONS == told & _NEGATIONS


async def same_memory(
    s: AsyncSession, user_id: str, kind: str, content: str, vector: Vector, model: str
) -> str | None:
    """The id of the user's memory of `kind` that says what `content` says, or None.

    Reads only the user's own rows of the current model (vectors.nearest_of_kind),
    so another user's memory never counts.
    """
    params: dict[str, Any] = {
        "user_id": user_id,
        "kind": kind,
        "model": model,
        "query": vector_literal(vector),
        "limit": CANDIDATES,
    }
    for row in (await s.execute(nearest_of_kind(vector), params)).all():
        if row.similarity < SAME_FACT_SIMILARITY:
            break
        if says_the_same(content, row.content):
            return str(row.id)
    return None
