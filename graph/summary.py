"""The rolling summary of what fell out of the model's window."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from graph.asked import asks_what_it_knows
from graph.intents import recognise
from graph.offline import OfflineChatModel
from graph.prompts import SUMMARIZE_PROMPT
from graph.statements import named_by, statements

SUMMARY_MAX_CHARS = 4000
SAID_LINE = "- user said: "  # a line of what the user said of themselves, verbatim
Turn = tuple[str, str]  # (role, content)


async def summarize(model: BaseChatModel, previous: str, turns: Sequence[Turn]) -> str:
    """Fold `turns` into `previous`; deterministic for the offline model."""
    if not turns:
        return previous
    if isinstance(model, OfflineChatModel):
        return fold_facts(previous, turns)
    transcript = "\n".join(f"{role}: {content}" for role, content in turns)
    reply = await model.ainvoke(
        [
            SystemMessage(SUMMARIZE_PROMPT),
            HumanMessage(f"Summary so far:\n{previous or '(none)'}\n\nNew messages:\n{transcript}"),
        ]
    )
    return str(reply.content)[:SUMMARY_MAX_CHARS]


def fold_facts(previous: str, turns: Sequence[Turn]) -> str:
    """Keep what the user said about themselves verbatim (every first-person
    statement, graph/statements.py: statements, and what they asked to be
    remembered), and the rest, what they asked or asked for, in brief; a
    request to forget is not kept (nor what it names).

    Fact lines survive the length cap before topic lines do, so a name told in
    turn one is still known at turn one thousand.
    """
    facts = [line for line in previous.splitlines() if line.startswith(SAID_LINE)]
    topics = [line for line in previous.splitlines() if line.startswith("- user asked: ")]
    for role, content in turns:
        request = recognise(content) if role == "user" else None
        if role != "user" or (request is not None and request.kind == "forget"):
            continue  # a request to forget is not kept either
        # "Remember that my mum's birthday is …" states it (graph/statements.py reads
        # it so); "Leo is 7" too, once they named Leo.
        last = facts[-1].removeprefix(SAID_LINE) if facts else ""  # "She's …" goes on about it
        stated = [said.sentence for said in statements(content, named_by(facts), last)]
        if not stated and request is not None and request.kind == "remember":
            stated = [request.topic]  # "Please remember: the boiler is due in May"
        facts.extend(f"{SAID_LINE}{sentence}" for sentence in stated)
        if not stated and not asks_what_it_knows(content):  # "Where do I live?" is no topic
            topics.append("- user asked: " + " ".join(content.split())[:80])
    facts = list(dict.fromkeys(facts))
    while topics and len("\n".join(facts + topics)) > SUMMARY_MAX_CHARS:
        topics.pop(0)
    while len("\n".join(facts)) > SUMMARY_MAX_CHARS:
        facts.pop(0)
    return "\n".join(facts + topics)
