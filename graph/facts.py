"""Plain-language facts about the user, found by pattern: the offline model's
grounding and its deterministic memory extraction."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A value runs to the end of its clause: punctuation, a line end, or " and ".
_VALUE = r"(?P<value>[^.,;!?\n]+?)(?=\s+and\s+|\s+but\s+|[.,;!?\n]|$)"

STATEMENTS: dict[str, tuple[str, ...]] = {
    "name": (r"\bmy name is ", r"\bcall me ", r"\bi am called ", r"\bname: "),
    "location": (r"\bi live in ", r"\bi'm living in ", r"\bi am based in ", r"\blives in: "),
    "work": (r"\bi work on ", r"\bi work at ", r"\bi'm working on ", r"\bworks on: "),
    "preference": (r"\bi prefer ", r"\bi like ", r"\bi love ", r"\bprefers: "),
}

QUESTIONS: dict[str, tuple[str, ...]] = {
    "name": (r"\bwhat(?:'s| is) my name\b", r"\bwho am i\b", r"\bdo you know my name\b"),
    "location": (r"\bwhere do i live\b", r"\bwhere am i (?:from|based)\b"),
    "work": (r"\bwhat do i work on\b", r"\bwhere do i work\b", r"\bwhat am i working on\b"),
    "preference": (r"\bwhat do i (?:prefer|like|love)\b",),
}

ANSWERS = {
    "name": "Your name is {value}.",
    "location": "You live in {value}.",
    "work": "You work on {value}.",
    "preference": "You told me you prefer {value}.",
}

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


def find_facts(text: str) -> list[Fact]:
    """Every fact stated in `text`, in order of appearance."""
    found: list[tuple[int, Fact]] = []
    for kind, pattern in _STATEMENT_RE.items():
        for match in pattern.finditer(text):
            value = match.group("value").strip().strip("\"'“”")
            if value and len(value) <= 120 and not value.lower().startswith("what"):
                found.append((match.start(), Fact(kind, value, match.group(0).strip())))
    return [fact for _, fact in sorted(found, key=lambda item: item[0])]


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
