"""The built-in offline model: no key, no network, deterministic, and grounded
in the context it is given (window, summary and memories alike)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from graph.asked import ALL_ABOUT_ME, LAST_TALK, about_the_user, is_question, small_talk
from graph.facts import as_asked, asked_about, find_facts, latest_facts
from graph.intents import EVERYTHING, forgets_everything, recognise
from graph.statements import greeting_alone, statements
from graph.told import (
    GUESSED_KINDS,
    all_about_them,
    closest_memory,
    last_conversation,
    liking_answers,
    likings,
    people_named,
    placed_by_another,
    preferred_name,
    remembered,
    role_said,
    said_back,
    said_earlier,
    said_last,
    their_name,
    told_of,
)
from graph.words import best_memory, liked_alike, once_each
from memory.same_fact import content_words

LABEL = "[offline model]"
# Two questions asked as one: "What is my name and where do I live?"
_AND_ASKS = re.compile(r",?\s+and\s+(?=(?:what|where|who|how|when|which)\b)", re.IGNORECASE)
UNKNOWN = f"{LABEL} I don't know that yet. Tell me and I will remember it."
_A_GUESS = (
    "(The closest thing I remember, found by meaning. If it is not what you asked, "
    "I don't know that yet: tell me and I will remember it.)"
)
_TOKEN = re.compile(r"\S+\s*|\s+")


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )


def offline_reply(messages: list[BaseMessage]) -> str:
    """The reply to the last human message, from what the context says, or
    from the result of the tool run for it. A question that says something
    too ("I live in Rome. Where do I work?") has both acknowledged."""
    if messages and isinstance(messages[-1], ToolMessage):
        return reply_from_tool(messages)
    humans = [text_of(m) for m in messages if isinstance(m, HumanMessage)]
    memories = remembered(next((text_of(m) for m in messages if m.type == "system"), ""))
    reply = _reply(messages, memories)
    if not humans or not is_question(humans[-1]) or reply.startswith(_NOTED):
        return reply
    said = said_now(as_asked(humans[-1].strip()), humans[:-1], memories)
    return f"{_NOTED} {'; '.join(said)}.{reply.removeprefix(LABEL)}" if said else reply


def said_now(text: str, before: list[str], memories: list[tuple[str, str]]) -> list[str]:
    """What `text` says of the user, read after the messages `before` it (who
    they named, what they said last) and their memories; none said twice."""
    named = people_named(before, memories)
    greeted = bool(before) and greeting_alone(before[-1])  # "hey", then "im lucas"
    return once_each([st.sentence for st in statements(text, named, said_last(before), greeted)])


_NOTED = f"{LABEL} Thanks, I'll remember that:"
_WHAT_I_DO = (
    "I am Threadline's built-in offline model (no API key is set), so I can't reason "
    "freely, but I remember what you tell me about yourself in English, such as your "
    "name (“I'm …”) or where you live (“I live in …”)."
)


def _reply(messages: list[BaseMessage], memories: list[tuple[str, str]]) -> str:
    """The reply to the last human message; `memories`, those the system prompt lists."""
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    question = as_asked(text_of(humans[-1]).strip()) if humans else ""
    intent = recognise(question)
    if intent is not None and forgets_everything(intent):
        return f"{LABEL} {EVERYTHING}"
    if intent is not None and intent.kind == "forget":
        return (
            f"{LABEL} I have no saved memory matching “{intent.topic}”, so nothing was forgotten."
        )
    if intent is not None and intent.kind == "remember":  # no tool ran: a visitor's
        kept = "; ".join(st.sentence for st in statements(question))  # thread, or memory off
        return f"{LABEL} Thanks, I'll remember that in this conversation: {kept or intent.topic}."
    if LAST_TALK.search(question):
        return f"{LABEL} {last_conversation(memories)}"
    if talk := small_talk(question):
        return f"{LABEL} {said_to(talk, their_name([text_of(m) for m in humans], memories))}"
    if together := _answered_together(question, messages, humans[-1], memories):
        return together
    kind = asked_about(question)
    if kind is not None:
        asked = [text_of(m) for m in humans]
        if kind in ("preference", "dislike"):  # all they like (of what is asked), not one
            liked = likings(asked, memories, question, kind)
            told = liked[0] if liked else None
            if told is None:  # or said in other words: "My hobbies are chess and climbing"
                in_words = best_memory(question, said_earlier(asked[:-1]) + memories)
                if in_words is not None:
                    return f"{LABEL} You told me: {in_words}"
        else:
            liked, told = [], told_of(kind, asked, memories)
        if told is None and kind == "name":  # only what to call them
            told = told_of("preferred name", asked, memories)
        if told is None:  # not in a memory nor this thread's window: its summary?
            context = [text_of(m) for m in messages if m.type in ("system", "human")]
            fact = latest_facts(context).get(kind)
            told = fact.sentence if fact is not None else None
            if told is not None and not liking_answers(question, told):
                told = None  # a summary's liking, of something else than asked
        if told is None and (placed := placed_by_another(kind, asked, memories)):
            return guessed(placed)  # "I work as a nurse in Leeds"
        if told is None and kind in GUESSED_KINDS:  # "I'm a software engineer"
            role = role_said(asked, memories) if kind == "work" else None
            closest = role or closest_memory(question, memories)
            return guessed(closest) if closest else UNKNOWN
        if told is None:
            return UNKNOWN
        reply = said_back(kind, told)
        if liked:
            reply = " ".join(list(dict.fromkeys(said_back(kind, said) for said in liked))[:5])
        if kind == "name" and (called := preferred_name(told, asked, memories)):
            reply = f"{reply} {called}"
        return f"{LABEL} {reply}"
    if ALL_ABOUT_ME.search(question):
        earlier = said_earlier([text_of(m) for m in humans[:-1]])  # not saved yet, or a visitor
        return f"{LABEL} {all_about_them(earlier, memories)}"
    if is_question(question):
        earlier = said_earlier([text_of(m) for m in humans[:-1]])
        best = best_memory(question, earlier + memories)
        if best is not None:
            return f"{LABEL} You told me: {best}"
        closest = closest_memory(question, memories) or liked_alike(question, memories)
        if closest is not None:
            return guessed(closest)
        if about_the_user(question):
            return UNKNOWN
    stated = find_facts(question)
    said = said_now(question, [text_of(m) for m in humans[:-1]], memories)
    if stated:
        noted = [f"{f.kind}: {f.value}" for f in stated]
        noted += [  # what else they said ("My dog is called Rex")
            sentence
            for sentence in said
            if not any(  # nor what the fact's own sentence says ("… with my partner Alex")
                f.value in sentence or content_words(sentence) <= content_words(f.sentence)
                for f in stated
            )
        ]
        return f"{LABEL} Thanks, I'll remember that ({'; '.join(noted)})."
    if said:
        return f"{LABEL} Thanks, I'll remember that: {'; '.join(said)}."
    echo = question if len(question) <= 200 else question[:200] + "…"
    return f"{LABEL} {_WHAT_I_DO} You said: “{echo}”"


def _answered_together(
    question: str, messages: list[BaseMessage], asked: BaseMessage, memories: list[tuple[str, str]]
) -> str | None:
    """Two questions asked as one ("What is my name and where do I live?"), each
    answered, when each is one it can answer (not one of the world's: "What is
    the capital of France and where do I live?" is answered as one)."""
    parts = _AND_ASKS.split(question)
    if len(parts) < 2:
        return None
    before = [m for m in messages if m is not asked]
    replies = [_reply([*before, HumanMessage(part)], memories) for part in parts]
    if any(_WHAT_I_DO in reply for reply in replies):
        return None
    return f"{LABEL} " + " ".join(reply.removeprefix(f"{LABEL} ") for reply in replies)


def said_to(talk: str, name: str | None) -> str:
    """The answer to small talk (graph/asked.py: small_talk), by name when known."""
    to = f", {name}" if name else ""
    if talk == "thanks":
        return f"You're welcome{to}!"
    if talk == "goodbye":
        return f"Goodbye{to}!"
    return f"Hello{to}! {_WHAT_I_DO}"


def guessed(said: str) -> str:
    """A memory found by meaning alone (`closest_memory`), said as the guess it is."""
    return f"{LABEL} You told me: {said}. {_A_GUESS}"


def reply_from_tool(messages: list[BaseMessage]) -> str:
    """Answer from the tool results at the end of `messages` (one tool step)."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    calls: dict[str | None, tuple[str, dict[str, Any]]] = {
        call["id"]: (call["name"], call["args"])
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
    }
    parts = []
    for result in results:
        name, args = calls.get(result.tool_call_id, (str(result.name), {}))
        parts.append(said_about(name, args, text_of(result)))
    return f"{LABEL} " + "\n\n".join(parts)


def said_about(tool: str, args: dict[str, Any], result: str) -> str:
    """One tool's outcome, in words."""
    if tool == "search_past_conversations":
        topic = args.get("query", "")
        if result.startswith("Nothing found"):
            return f"I searched your past conversations for “{topic}” and found nothing."
        return f"I searched your past conversations for “{topic}”. I found:\n\n{result}"
    if tool == "remember":
        if not result.startswith("Saved"):
            return f"I could not save that. {result}"
        content = str(args.get("content", "")).removeprefix("User said: ")
        return f"Noted. I will remember that: {content}"
    if tool == "forget":
        if not result.startswith("Forgot"):
            return f"I could not forget that. {result}"
        forgotten = result.partition(": ")[2] or result
        return f"Done. I forgot {forgotten}"
    return f"{tool}: {result}"


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token)."""
    return max(1, len(text) // 4) if text else 0


class OfflineChatModel(BaseChatModel):
    """A real chat model that streams its deterministic reply word by word."""

    token_delay_ms: int = 0

    @property
    def _llm_type(self) -> str:
        return "threadline-offline"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = offline_reply(messages)
        message = AIMessage(content=reply, usage_metadata=usage_of(messages, reply))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = offline_reply(messages)
        tokens = _TOKEN.findall(reply)
        for i, token in enumerate(tokens):
            yield _chunk(token, usage_of(messages, reply) if i == len(tokens) - 1 else None)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = offline_reply(messages)
        tokens = _TOKEN.findall(reply)
        for i, token in enumerate(tokens):
            if self.token_delay_ms:
                await asyncio.sleep(self.token_delay_ms / 1000)
            chunk = _chunk(token, usage_of(messages, reply) if i == len(tokens) - 1 else None)
            if run_manager is not None:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


def _chunk(text: str, usage: UsageMetadata | None) -> ChatGenerationChunk:
    return ChatGenerationChunk(message=AIMessageChunk(content=text, usage_metadata=usage))


def usage_of(messages: list[BaseMessage], reply: str) -> UsageMetadata:
    """Estimated token counts of `messages` and their `reply`, reported with the
    last chunk as real models do."""
    prompt = sum(estimate_tokens(text_of(m)) for m in messages)
    output = estimate_tokens(reply)
    return UsageMetadata(input_tokens=prompt, output_tokens=output, total_tokens=prompt + output)
