"""Plain-language facts about the user, found by pattern: the kinds of fact a
statement says and a question asks (name, location, work, …), and the names
the user gives. The offline model's grounding; every statement, with its
subject, is graph/statements.py's."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

# A value runs to the end of its clause: punctuation, a line end, " and ", or
# " - " (the next point of a summary shown on one line).
_VALUE = r"(?P<value>[^.,;!?\n]+?)(?=\s+and\s+|\s+but\s+|\s+-\s+|[.,;!?\n]|$)"

STATEMENTS: dict[str, tuple[str, ...]] = {
    "name": (
        r"\bmy name is ",
        r"\bmy name's ",
        r"\bcall me ",
        r"\bi am called ",
        r"\bname: ",
        r"\bi go by ",
        r"\b(?:everyone|everybody|people|friends) calls? me ",
    ),
    "location": (
        r"\bi live in ",
        r"\bwe live in ",
        r"\bi'm living in ",
        r"\bi am based in ",
        r"\blives in: ",
    ),
    "work": (
        r"\bi work on ",
        r"\bi work at ",
        r"\bi work as ",
        r"\bi work for ",
        r"\bi'm working on ",
        r"\bworks on: ",
    ),
    "preference": (r"\bi prefer ", r"\bi like ", r"\bi love ", r"\bprefers: "),
}

QUESTIONS: dict[str, tuple[str, ...]] = {
    "name": (
        r"\bwhat(?:'s| is) my (?:full |first |last |real |given )?name\b",
        r"\bwhat(?:'s| is) my (?:surname|family name)\b",
        r"\bwho am i\b(?!\s+\w)",  # not "Who am I getting married to?"
        r"\bdo you (?:still )?(?:know|remember|recall) (?:what )?my name\b",
        r"\bwhat (?:should|do) you call me\b",
        r"\bwhat do (?:people|others|everyone|everybody|(?:my )?friends|they) call me\b",
        r"\bwhat do i go by\b",
        r"\bwhat am i called\b",
        r"\b(?:tell|remind) me (?:of |about )?my name\b",
    ),
    "location": (
        r"\bwhere do (?:i|we) live\b",
        r"\bwhere am i (?:based|living|located)\b",
        r"\b(?:which|what) (?:city|town|country|place) (?:do|am) i\b(?!.*\bfrom\b)",
        r"\bwhere(?:'s| is) my home\b",
        r"\b(?:tell|remind) me where i (?:live|am (?:from|based|living))\b",
    ),
    "work": (
        r"\bwhat do i work on\b",
        r"\bwhere do i work\b",
        r"\bwhat am i working on\b",
        r"\bwho do i work for\b",
        r"\bwhat do i do for (?:a living|work)\b",
        r"^\s*(?:and\s+|so\s+)?what do i do\s*\??\s*$",
        r"\b(?:what|who)(?:'s| is) my (?:job|occupation|profession|employer|line of work)\b",
        r"\bwho employs me\b",
        r"\b(?:tell|remind) me (?:where i work|what i do for (?:a living|work))\b",
        r"\bwhere am i employed\b",
    ),
    "preference": (
        r"\bwhat do i (?:prefer|like|love|enjoy)\b",
        r"\bwhat (?:are|were) my (?:hobbies|interests|likes)\b",
    ),
    "dislike": (
        r"\bwhat (?:\w+\s+)?(?:don't|don’t|do not) (?:i|we) (?:like|enjoy)\b",
        r"\bwhat (?:\w+\s+)?do (?:i|we) (?:hate|dislike|not like|not enjoy|can't stand)\b",
        r"\bwhat (?:are|were) my dislikes\b",
        r"\banything (?:that )?(?:i|we) (?:don't|don’t|do not) like\b",
    ),
    "previous location": (
        r"\bwhere did (?:i|we) (?:use to |used to )?live\b",
        r"\bwhere (?:was i|were we) living before\b",
        r"\bwhere (?:have|had) (?:i|we) lived\b",
        r"\bwhere did (?:i|we) (?:move|relocate|come) from\b",
    ),
    "age": (r"\bhow old am i\b", r"\bwhat(?:'s| is) my age\b"),
    "origin": (
        r"\bwhere am i (?:originally )?from\b",
        r"\b(?:which|what) (?:city|town|country|place) (?:am i|do i come|did i come)"
        r" (?:originally )?from\b",
        r"\bwhere do i (?:originally )?come from\b",
        r"\bwhere was i born\b",
        r"\bwhere did i grow up\b",
        r"\bwhat(?:'s| is) my (?:hometown|home town|home country|nationality)\b",
    ),
}

# "I'm Marta", "I am Marta Silva": a name when capitalised and nothing follows
# in its clause; not "I'm French" (NOT_NAMES: what such a word more often is).
_INTRO = re.compile(
    r"(?i:\b(?:i'm|i’m|i am)\s+)(?P<value>[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)?)"
    r"(?=\s*(?:[.,;!?\n]|$)|\s+(?i:and|but)\s+)"
)
NOT_NAMES = frozenset(
    """american british english french german spanish italian portuguese brazilian canadian
    mexican indian chinese japanese korean russian polish dutch swedish norwegian danish
    finnish irish scottish welsh greek turkish australian african european asian swiss
    austrian belgian ukrainian vietnamese thai filipino argentinian colombian chilean
    peruvian egyptian nigerian kenyan israeli iranian pakistani arab jewish muslim christian
    catholic hindu buddhist vegan vegetarian okay ok fine sorry back done here ready
    new home sure""".split()  # noqa: SIM905 - words read better than a list
)
_SECOND_PERSON = {
    "i'm": "you're",
    "i’m": "you're",
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "we're": "you're",
    "we’re": "you're",
    "we've": "you've",
    "we’ve": "you've",
    "we": "you",
    "us": "you",
    "our": "your",
    "ours": "yours",
}
_FIRST_PERSON_WORD = re.compile(
    rf"\b({'|'.join(_SECOND_PERSON)})\b(\s+(?:am|was|wasn't|wasn’t)\b)?", re.IGNORECASE
)
# "I am", "I was": the verb said to "you" ("You were born in Lisbon").
_TO_YOU = {"am": "are", "was": "were", "wasn't": "weren't", "wasn’t": "weren't"}
# The words a greeting is said in (a greeting before a statement, here; one
# said alone is small talk, graph/asked.py).
HELLO = r"hi|hello|hey|hiya|greetings|good\s+(?:morning|afternoon|evening)"
# A greeting or filler before what is said ("Hi, I'm Marta", "Actually I moved",
# "oh and my mom lives with us", "sorry, I meant my sons are 14"): not part of
# the statement.
GREETING = re.compile(
    rf"^(?:(?:{HELLO}|ok|okay|so|well|and|plus|ps|sorry|oops|wait|i mean|i meant|"
    r"i forgot to (?:say|mention|tell you)(?: that)?|"
    r"oh|actually|also|anyway|btw|by the way|fyi|(?:(?:a (?:little )?bit|some facts|a few things"
    r"|more) )?about me|(?:a )?quick intro)"
    r"(?:\s+there)?\s*[,!.:-]?\s+)+",
    re.IGNORECASE,
)

# A run of spaces shrunk to one, a run of blank space with a line end in it to
# the line end: what the patterns here read (they stop at " and ", " - " or a
# line end, so a message of 32,000 spaces made each of them try every split of
# the run: 12 s of the event loop's time for one message, measured).
_SPACES, _LINE_BREAKS = re.compile(r"[^\S\n]+"), re.compile(r"\s*\n\s*")


def squeezed(text: str) -> str:
    return _LINE_BREAKS.sub("\n", _SPACES.sub(" ", text))


# "whats my name", "wheres my car": a question typed in a hurry, apostrophe left out.
_UNAPOSTROPHED = re.compile(r"\b(what|where|who|how|when|why|that)s\b", re.IGNORECASE)


# Words typed as sounds in a hurry: "what r my hobbies", "do u know my name".
_SOUNDED = {"r": "are", "u": "you", "ur": "your", "ya": "you"}
_SOUNDED_RE = re.compile(rf"(?<![.'-])\b(?:{'|'.join(_SOUNDED)})\b(?![.'-])")  # lower case


def as_asked(question: str) -> str:
    """A question as the patterns here read it: curly apostrophes straight,
    "whats" as "what's", "r" as "are"."""
    question = _UNAPOSTROPHED.sub(r"\1's", question.replace("’", "'"))
    return _SOUNDED_RE.sub(lambda word: _SOUNDED[word[0].lower()], question)


# A verb before "I" or "we" asks ("What do I like to eat?", "Where did we live
# in 2019?"): what follows it states nothing.
_INVERTED = re.compile(
    r"\b(?:do|does|did|don't|doesn't|didn't|can|could|should|would|will|shall|may|might|must)"
    r"\s+$",
    re.IGNORECASE,
)
_STATEMENT_RE = {
    kind: re.compile("(?:" + "|".join(p) + ")" + _VALUE, re.IGNORECASE)
    for kind, p in STATEMENTS.items()
}
_QUESTION_RE = {kind: re.compile("|".join(p), re.IGNORECASE) for kind, p in QUESTIONS.items()}


@dataclass(frozen=True)
class Fact:
    kind: str
    value: str
    sentence: str


def find_facts(text: str, kinds: Iterable[str] | None = None) -> list[Fact]:
    """Every fact stated in `text` (of `kinds`: all by default), in order of appearance."""
    text = squeezed(text)
    found: list[tuple[int, Fact]] = []
    patterns = _STATEMENT_RE.items() if kinds is None else [(k, _STATEMENT_RE[k]) for k in kinds]
    for kind, pattern in patterns:
        for match in pattern.finditer(text):
            if _INVERTED.search(text[max(0, match.start() - 12) : match.start()]):
                continue  # "What do I like to eat?" states no liking
            value = match.group("value").strip().strip("\"'“”")
            if value and len(value) <= 120 and not value.lower().startswith("what"):
                found.append((match.start(), Fact(kind, value, match.group(0).strip())))
    if kinds is None or "name" in kinds:
        found += [(match.start(), Fact("name", name, match[0])) for match, name in intros(text)]
    return [fact for _, fact in sorted(found, key=lambda item: item[0])]


def names_given(text: str) -> tuple[str, ...]:
    """The names `text` gives for the user, in order. Every turn's prompt looks
    through the same window for the user's name (a tenth of a millisecond a
    turn, measured, for a window of ten questions): a text of a usual length
    is looked through once (at most 8 MB held, whatever the texts)."""
    return _names_given(text) if len(text) <= 1000 else _names_in(text)


def _names_in(text: str) -> tuple[str, ...]:
    return tuple(fact.value for fact in find_facts(text, ("name",)))


_names_given = functools.lru_cache(maxsize=2048)(_names_in)


def intros(text: str) -> list[tuple[re.Match[str], str]]:
    """Names the user gives as "I'm Marta" / "I am Marta Silva", with their match."""
    return [
        (match, match.group("value"))
        for match in _INTRO.finditer(text)
        if match.group("value").split()[0].lower() not in NOT_NAMES
    ]


def second_person(sentence: str) -> str:
    """What the user said of themselves, said back to them: "I work as a nurse
    at my sister's clinic" -> "You work as a nurse at your sister's clinic"."""

    def swapped(match: re.Match[str]) -> str:
        word = match.group(1).lower()
        if match.group(2) and word == "i":  # "I am", "I was"
            return f"you {_TO_YOU[match.group(2).strip().lower()]}"
        return _SECOND_PERSON.get(word, word) + (match.group(2) or "")

    said = _FIRST_PERSON_WORD.sub(swapped, sentence.strip())
    return said[:1].upper() + said[1:]


def latest_facts(texts: list[str]) -> dict[str, Fact]:
    """The last stated value of each kind across `texts`, oldest text first."""
    latest: dict[str, Fact] = {}
    for text in texts:
        for fact in find_facts(text):
            latest[fact.kind] = fact
    return latest


def asked_about(question: str) -> str | None:
    """Which kind of fact a question asks for, if any."""
    for kind, pattern in _QUESTION_RE.items():
        if pattern.search(question):
            return kind
    return None
