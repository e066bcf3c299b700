"""What a question asks: whether it is one, whether it is about the user (or
their household), and which of the offline model's questions it is ("What
do you know about me?", "What did we talk about last time?"). The kinds of
fact a question asks for are graph/facts.py's; what answers it is
graph/told.py's."""

from __future__ import annotations

import re

from graph.facts import HELLO, asked_about

# The words a question starts with; a question about the user names them too.
ASKS = (
    "what|who|where|when|which|how|why|whom|whose|do|does|did|am|is|are|can|could|would|will"
    "|have|has|tell me|remind me"
)
_QUESTION_START = re.compile(rf"^(?:{ASKS})\b", re.IGNORECASE)
# "our" is their household's ("What is our cat called?"), and so is "we" with
# what a household has or does ("How many dogs do we have?"); otherwise "we"
# and "us" are as often the user and the assistant ("Can we talk about
# something else?"). "Any allergies I have?" asks too.
_THEIRS = (
    r"\b(?:my|i|mine|i'm|our)\b|\bwe\s+(?:have|own|keep|live|lived|got|adopted|bought)\b"
    # what the household is about to do: "Where are we going on holiday?"
    r"|\b(?:are\s+we|we\s+are|we're|we’re)\s+(?:going|moving|getting|planning|visiting|flying"
    r"|travel+ing)\b"
)
_ABOUT_THE_USER = re.compile(rf"^(?:{ASKS}|any)\b.*(?:{_THEIRS}|\bme\b)", re.IGNORECASE)
# A request to the assistant ("Can you suggest a recipe for me?") is about
# the user only when it asks about something of theirs ("Can you tell me my name?").
_REQUEST = re.compile(rf"^(?:can|could|would|will)\s+you\b(?!.*(?:{_THEIRS}))", re.IGNORECASE)

# "What do you know about me?", "Tell me everything you remember about me",
# "What have you learned about me so far?", "What did I tell you about myself?",
# "Tell me something about me"
ALL_ABOUT_ME = re.compile(
    r"\b(?:what|everything|all|anything)(?:\s+else)?\s+(?:(?:do|did|have)\s+)?you(?:'ve|’ve)?"
    r"\s+(?:know|remember|recall|learn(?:ed|t)?)\s+(?:about|of)\s+(?:me|myself)\b"
    r"|\bdo you (?:know|remember) anything about me\b"
    r"|\bwhat (?:have i told|did i tell) you\b"
    r"|^(?:(?:can|could|would)\s+you\s+)?tell\s+me\s+(?:something|anything|everything|all|a\s+bit)"
    r"\s+(?:(?:you\s+(?:know|remember)\s+)?about|of)\s+(?:me|myself)\b",
    re.IGNORECASE,
)
# A question asking what a thing of theirs is called ("What is my pet called?",
# "What's my dog's name?"), or whether they have one ("Do I have any pets?",
# "How many kids do I have?"): only a thing they said they have answers it.
# Not "What's my diet?", which "I'm vegetarian" answers.
MY_THING_ASKED = re.compile(
    r"\bmy\s+(?!name\b)\w+(?:(?:'|’)s\s+name\b|\s+(?:called|named)\b)"
    r"|\b(?:do|did)\s+(?:i|we)\s+(?:have|own)\s+(?:(?:any|an?)\s+)?\w"  # "Do I have pets?"
    r"|\bhow\s+many\s+\w+\s+(?:do|did)\s+(?:i|we)\s+(?:have|own)\b",
    re.IGNORECASE,
)
# "What did we talk about last time?", "What was our last conversation about?",
# "Remind me what we discussed": the latest past conversation.
LAST_TALK = re.compile(
    r"^(?:and\s+|so\s+)?(?:(?:can\s+you\s+)?remind\s+me\s+)?what\s+(?:did|have|were)?\s*we\s+"
    r"(?:talk(?:ed|ing)?|discuss(?:ed|ing)?|chat(?:ted|ting)?)(?:\s+about)?"
    r"(?:\s+(?:(?:the\s+)?last\s+(?:time|week|night)|before|earlier|yesterday|previously"
    r"|recently|the\s+other\s+day|in\s+our\s+(?:last|previous)\s+(?:conversation|chat)))?"
    r"\s*[?.!]*$"
    r"|^what\s+was\s+our\s+(?:last|previous)\s+(?:conversation|chat|session|talk)\s+about\b",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(_QUESTION_START.match(text.strip()))


def asks_what_it_knows(question: str) -> bool:
    """A question for a kind of fact they told ("Where do I live?") or for all
    of it ("What do you know about me?"): recall, not a topic of its own."""
    return asked_about(question) is not None or bool(ALL_ABOUT_ME.search(question))


def about_the_user(question: str) -> bool:
    """A question about the user themselves ("Who is my physician?", or typed
    without its question mark: "where does my sister live")."""
    question = question.strip()
    return bool(_ABOUT_THE_USER.match(question)) and not _REQUEST.match(question)


# Small talk, said alone: a greeting ("Hi", "Hello there, how are you?"),
# thanks, a goodbye. Answered as such, not with what the model cannot do.
_SMALL_TALK = {
    "greeting": re.compile(
        rf"^(?:{HELLO}|howdy|yo|good\s+day)"
        r"(?:\s+(?:there|again|everyone|threadline))?[\s,!.]*"
        r"(?:how\s+are\s+you(?:\s+(?:doing|today))?|how(?:'s|\s+is)\s+it\s+going"
        r"|what'?s\s+up)?[\s?!.]*$",
        re.IGNORECASE,
    ),
    "thanks": re.compile(
        r"^(?:(?:ok(?:ay)?|great|cool|perfect|awesome|nice)[\s,!.]+)?"
        r"(?:thanks?|thank\s+you|thx|ty|cheers|many\s+thanks)"
        r"(?:\s+(?:so|very)\s+much|\s+a\s+lot|\s+again)?[\s!.]*$",
        re.IGNORECASE,
    ),
    "goodbye": re.compile(
        r"^(?:ok(?:ay)?[\s,!.]+)?(?:bye|goodbye|good\s*bye|see\s+you(?:\s+later|\s+soon)?"
        r"|see\s+ya|good\s*night|talk\s+(?:to\s+you\s+)?later|later)[\s!.]*$",
        re.IGNORECASE,
    ),
}


def small_talk(text: str) -> str | None:
    """Which small talk `text` is ("greeting", "thanks", "goodbye"), if that is all it is."""
    text = text.strip()
    return next((kind for kind, pattern in _SMALL_TALK.items() if pattern.match(text)), None)
