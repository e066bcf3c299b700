"""The memory requests the planner recognises without a model (graph/intents.py):
the offline model's way into the tools, and a tool-less model's."""

from __future__ import annotations

import pytest

from graph.intents import Intent, forgets_everything, recognise


@pytest.mark.parametrize(
    ("said", "intent"),
    [
        ("Forget that I play tennis.", Intent("forget", "I play tennis")),
        ("Please forget my favourite band.", Intent("forget", "my favourite band")),
        ("Forget about my partner", Intent("forget", "my partner")),
        # a request put as a question is still one
        ("Could you please forget that I smoke?", Intent("forget", "I smoke")),
        (
            "Can you delete the memory that I'm learning Spanish?",
            Intent("forget", "I'm learning Spanish"),
        ),
        ("Please remove the fact that I have a cat.", Intent("forget", "I have a cat")),
        ("Delete that I drink tea from your memory.", Intent("forget", "I drink tea")),
        ("Don't remember that I drink tea.", Intent("forget", "I drink tea")),
        ("Stop remembering that I live in York", Intent("forget", "I live in York")),
        ("Remember that my mum is Ann", Intent("remember", "my mum is Ann")),
        ("Can you remember that my mum is Ann?", Intent("remember", "my mum is Ann")),
        (
            "Don't forget that the boiler is due in May!",
            Intent("remember", "the boiler is due in May"),
        ),
        ("Search my past conversations for heron", Intent("search", "heron")),
        # a word or two before it
        ("Actually, forget where I live.", Intent("forget", "where I live")),
        ("Oh and remember that my cat is Tom", Intent("remember", "my cat is Tom")),
        ("Well, could you forget that I smoke?", Intent("forget", "I smoke")),
    ],
)
def test_memory_requests_however_they_are_put(said: str, intent: Intent) -> None:
    assert recognise(said) == intent


@pytest.mark.parametrize(
    "said",
    [
        "Do you remember my name?",  # asks what is remembered
        "Can you remember my name?",
        "Remove the onions from the recipe.",  # removes nothing remembered
        "Delete the file",
        "Can you remove the onions?",
        "I don't remember where I put my keys.",
        "I forgot my umbrella.",
        "Don't forget to call me tomorrow",  # a reminder, not a fact to keep
        "Forget about the weather, what's for dinner?",  # a question, not put as a request
        "What did we talk about last time?",  # when, not what: the latest conversation
        "What did we talk about?",
        "what did we discuss yesterday",
        "What did we talk about in our last conversation?",
    ],
)
def test_questions_and_other_requests_are_not_memory_requests(said: str) -> None:
    assert recognise(said) is None


@pytest.mark.parametrize(
    ("said", "everything"),
    [
        ("Forget everything you know about me.", True),
        ("forget it all", True),
        ("Please forget all of my memories", True),
        ("Can you forget everything I told you about myself?", True),
        ("Forget all the data you have, please", True),
        ("Forget everything about my ex", False),  # one thing, said broadly
        ("Forget all my passwords", False),
        ("Forget all that I said about Rome", False),
    ],
)
def test_a_request_to_forget_everything_is_told_apart(said: str, everything: bool) -> None:
    intent = recognise(said)
    assert intent is not None and intent.kind == "forget"
    assert forgets_everything(intent) is everything


def test_what_a_search_is_about_is_what_follows_the_asking() -> None:
    assert recognise("What did we talk about regarding Portugal?") == Intent("search", "Portugal")
    assert recognise("What did we say about the budget last time?") == Intent(
        "search", "budget last time"
    )
