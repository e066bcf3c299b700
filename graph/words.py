"""The words a question and a memory share: what a text names, stemmed as
memory.same_fact compares memories (`stems`), the words a thing may be said by
instead ("pets": "dog", "cat"; "married": "husband"), and the memory that
answers a question in its own words (`best_memory`). graph/told.py finds what
answers a question of a kind of fact (name, home, work …); this, the rest."""

from __future__ import annotations

import functools
import re

from graph.asked import ASKS, about_the_user
from graph.prompts import MEMORY_GROUPS
from graph.statements import names_in, statements
from memory.same_fact import content_words

# The title the prompt lists past conversations' summaries under.
PAST = next(title for title, kinds in MEMORY_GROUPS if "summary" in kinds)

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
_DOGS = (  # breeds that name nothing else ("boxer", "lab" and "pointer" do)
    "retriever labrador poodle labradoodle terrier spaniel beagle collie husky bulldog "
    "dachshund corgi pug chihuahua greyhound whippet schnauzer rottweiler dalmatian sheepdog"
)
_CATS = "tabby siamese ragdoll sphynx"  # not "persian", "bengal": a language, a place
_KINDS_OF = {
    kind: content_words(words)
    for kind_word, words in {
        "pet": f"dog dogs cat cats puppy kitten fish hamster rabbit parrot bird horse tortoise "
        f"{_DOGS} {_CATS}",
        "dog": f"puppy {_DOGS}",  # "What's my dog's name?": "a golden retriever named Sunny"
        "cat": f"kitten {_CATS}",
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
SOMEONE = content_words(f"{_FAMILY} fiance fiancee fiancé fiancée girlfriend boyfriend")
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


def best_memory(question: str, memories: list[tuple[str, str]]) -> str | None:
    """The memory that answers a question that is not about a kind of fact
    (those are `told_of`) in the question's own words, or None.

    The memory sharing the most words with the question, in the prompt's order
    on a tie (a question not about the user needs two: one shared word,
    "France", does not answer "What is the capital of France?"). Past
    conversations' summaries answer nothing here: they share words with
    everything.
    """
    memories = not_summaries(memories)
    asked = widened(stems(question) - _NOT_A_SUBJECT)
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
    known = widened(stems(" ".join(_THE_THING.findall(question))) - _NOT_A_SUBJECT)
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


def widened(asked: frozenset[str]) -> frozenset[str]:
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
    return next((said for _, said in not_summaries(memories) if felt & content_words(said)), None)


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


def not_summaries(memories: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(group, said) for group, said in memories if group != PAST]


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
