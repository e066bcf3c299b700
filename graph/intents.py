"""Requests the planner recognises without a model: search past conversations,
remember something, forget something. The offline model's way into the tools
(a model that calls tools chooses them itself)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_PAST = r"(?:past|previous|earlier|old|other)\s+(?:conversations?|chats?|threads?|sessions?)"
_SEARCH = [
    re.compile(
        r"\b(?:search|look\s+through|look\s+in|check|go\s+through|find\s+in)\s+(?:my|our)\s+"
        + _PAST
        + r"\s+(?:for|about)\s+(?P<topic>.+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bwhat\s+(?:did|have)\s+(?:we|i)\s+(?:say|said|talk(?:ed)?|discuss(?:ed)?|"
        r"mention(?:ed)?|decide(?:d)?)\s+(?:about|on|regarding)\s+(?P<topic>.+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:did|have)\s+(?:i|we)\s+(?:ever\s+)?(?:mention(?:ed)?|talk(?:ed)?|"
        r"say|said|tell|told)\s+(?:you\s+)?(?:anything\s+)?(?:about\s+|of\s+)?(?P<topic>.+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"\bwhen\s+did\s+(?:we|i)\s+(?:talk|speak|chat)\s+about\s+(?P<topic>.+)", re.IGNORECASE
    ),
]
# What may come before a request: "Actually, forget …", "Oh and remember …".
_LEAD_IN = (
    r"(?:(?:actually|oh|ok|okay|also|and|so|well|hey|wait|sorry|hmm|um|btw|by\s+the\s+way"
    r"|on\s+second\s+thought)\b[\s,!.:;-]*)*"
)
# How a request is put: "please", "can you", "could you please", …
_ASKING = r"^\s*" + _LEAD_IN + r"(?:please\s+)?(?:(?:could|can|would|will)\s+you\s+)?(?:please\s+)?"
_REMEMBER = re.compile(
    _ASKING + r"(?:(?:remember|note|keep\s+in\s+mind)(?:\s+that)?"
    r"|(?:don[’']t|do\s+not)\s+forget\s+that)[\s:,]+(?P<topic>.+)$",
    re.IGNORECASE | re.DOTALL,
)
# "Forget that I …", "Don't remember that …", "Stop remembering …", "Delete the
# memory that …": delete, remove and erase only with "memory" or "fact" (or
# "from your memory"), as "Remove the onions" asks for nothing of the kind.
_FORGET = re.compile(
    _ASKING + r"(?:forget|do\s+not\s+remember|don[’']t\s+remember|stop\s+remembering"
    r"|(?:delete|remove|erase)\s+(?:the\s+|that\s+|this\s+|your\s+)?(?:memory|fact|note)"
    r"(?:\s+(?:that|about|of))?)"
    r"(?:\s+that|\s+about|\s+what)?[\s:,]+(?P<topic>.+?)$",
    re.IGNORECASE | re.DOTALL,
)
_FROM_MEMORY = re.compile(
    _ASKING + r"(?:delete|remove|erase)\s+(?:that\s+)?(?P<topic>.+?)\s+from\s+(?:your\s+)?"
    r"memor(?:y|ies)"
    r"[\s.!?]*$",
    re.IGNORECASE | re.DOTALL,
)
# A request put as a question ("Can you forget that I …?") is still one; "Do
# you remember …?" and "Can you remember my name?" (no "that") ask.
_ASKED_AS_A_QUESTION = re.compile(
    r"^\s*" + _LEAD_IN + r"(?:please\s+)?(?:could|can|would|will)\s+you\s+(?:please\s+)?"
    r"(?:forget|delete|remove|erase|stop\s+remembering|(?:remember|note)\s+that)\b",
    re.IGNORECASE,
)
# When, not what: "What did we talk about last time?" asks for the latest
# conversation (the model has its summary), not for a search for "last time".
_WHEN_ONLY = re.compile(
    r"^(?:about\s*)?(?:(?:the\s+)?last\s+(?:time|week|night|month|conversation|chat|session)|before|earlier"
    r"|yesterday|recently|lately|previously|the\s+other\s+day"
    r"|in\s+(?:our|the|my)\s+(?:last|previous|earlier)\s+(?:conversation|chat|session|thread)s?)?$",
    re.IGNORECASE,
)
_TRAILING = " \t\n.!?\"'“”"
_FILLER = re.compile(
    r"^(?:(?:about|regarding|on)\s+)?(?:the|a|an|my|our|that)\s+|^(?:about|regarding)\s+",
    re.IGNORECASE,
)

IntentKind = Literal["search", "remember", "forget"]


@dataclass(frozen=True)
class Intent:
    kind: IntentKind
    topic: str  # what to search for, remember or forget, as the user put it


# "Forget everything (you know about me)", "Forget all of it", "Forget all my
# memories": no one memory, and not a thing to do on a word (see `EVERYTHING`).
_ALL = (
    r"(?:everything|it\s+all|all(?:\s+of\s+(?:it|this|that|them))?"
    r"|all\s+(?:of\s+)?(?:my|your|the)\s+(?:memories|memory|data|facts|info\w*))"
)
_ABOUT_ME = (
    r"(?:\s+about\s+(?:me|myself)|\s+(?:that\s+)?(?:you\s+(?:know|remember|have|learned|learnt)"
    r"|i(?:'ve|\s+have)?\s+(?:told|said))(?:\s+you)?(?:\s+(?:about|of)\s+(?:me|myself))?)?"
)
_EVERYTHING = re.compile(rf"^(?:about\s+)?{_ALL}{_ABOUT_ME}(?:,?\s+please)?$", re.IGNORECASE)
EVERYTHING = (
    "I forget one memory at a time: tell me which (“Forget that I live in …”). "
    "Every memory I keep is listed under “What I remember”, where you can delete any of them."
)


def forgets_everything(intent: Intent) -> bool:
    """Whether `intent` asks to forget everything at once: answered with how to
    (`EVERYTHING`), never by deleting a memory that happens to share a word."""
    return intent.kind == "forget" and _EVERYTHING.match(intent.topic) is not None


def _clean(topic: str) -> str:
    return " ".join(topic.split()).strip(_TRAILING)[:300]


def recognise(question: str) -> Intent | None:
    """The memory request in `question`, if it is one. A question about
    remembering ("do you remember …?") is not a request to remember."""
    text = question.strip()
    for pattern in _SEARCH:
        match = pattern.search(text)
        if match and (topic := _clean(match.group("topic"))) and not _WHEN_ONLY.match(topic):
            return Intent("search", _FILLER.sub("", topic) or topic)
    if text.endswith("?") and not _ASKED_AS_A_QUESTION.match(text):
        return None
    for kind, pattern in (("forget", _FORGET), ("forget", _FROM_MEMORY), ("remember", _REMEMBER)):
        match = pattern.match(text)
        if match and (topic := _clean(match.group("topic"))):
            return Intent(kind, topic)  # type: ignore[arg-type]
    return None


_WORD = re.compile(r"\w+", re.UNICODE)
_COMMON = frozenset(
    [
        "i",
        "me",
        "my",
        "mine",
        "you",
        "your",
        "we",
        "our",
        "the",
        "a",
        "an",
        "is",
        "are",
        "was",
        "were",
        "am",
        "be",
        "that",
        "this",
        "it",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "about",
        "user",
        "said",
    ]
)


def words(text: str) -> set[str]:
    """The meaningful words of `text`, lowercased (for matching a memory)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _COMMON}


def asks_to_forget(text: str) -> bool:
    """Whether `text` asks to forget something ("Forget that I …")."""
    intent = recognise(text)
    return intent is not None and intent.kind == "forget"
