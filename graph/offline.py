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

from graph.facts import ANSWERS, asked_about, find_facts, latest_facts
from graph.intents import recognise
from graph.prompts import RELEVANT

LABEL = "[offline model]"
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
    from the result of the tool run for it."""
    if messages and isinstance(messages[-1], ToolMessage):
        return reply_from_tool(messages)
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    question = text_of(humans[-1]).strip() if humans else ""
    intent = recognise(question)
    if intent is not None and intent.kind == "forget":
        return (
            f"{LABEL} I have no saved memory matching “{intent.topic}”, so nothing was forgotten."
        )
    context = [text_of(m) for m in messages if m.type in ("system", "human")]
    kind = asked_about(question)
    if kind is not None:
        fact = latest_facts(context).get(kind)
        if fact is not None:
            return f"{LABEL} {ANSWERS[kind].format(value=fact.value)}"
    if kind is not None or about_the_user(question):
        relevant = relevant_memories(messages)
        if relevant:
            return f"{LABEL} You told me: {relevant[0]}"
        return f"{LABEL} I don't know that yet. Tell me and I will remember it."
    stated = find_facts(question)
    if stated:
        noted = "; ".join(f"{f.kind}: {f.value}" for f in stated)
        return f"{LABEL} Thanks, I'll remember that ({noted})."
    echo = question if len(question) <= 200 else question[:200] + "…"
    return (
        f"{LABEL} I am Threadline's built-in offline model (no API key is set), so I "
        f"can't reason freely, but I remember what you tell me, such as your name or "
        f"where you live. You said: “{echo}”"
    )


_ABOUT_THE_USER = re.compile(
    r"^(?:what|who|where|when|which|how|whom|whose|do|does|did|am|is|are|have|can)\b.*"
    r"\b(?:my|i|me|mine|i'm)\b",
    re.IGNORECASE,
)


def about_the_user(question: str) -> bool:
    """A question about the user themselves ("Who is my physician?")."""
    return question.rstrip().endswith("?") and bool(_ABOUT_THE_USER.match(question.strip()))


def relevant_memories(messages: list[BaseMessage]) -> list[str]:
    """The memories the prompt lists as relevant to this message, best first
    (graph/prompts.py), as the user said them."""
    system = next((text_of(m) for m in messages if m.type == "system"), "")
    lines = system.splitlines()
    if RELEVANT not in lines:
        return []
    found = []
    for line in lines[lines.index(RELEVANT) + 1 :]:
        if not line.startswith("- "):
            break
        said = line[2:].split(": ", 1)[1] if re.match(r"- m\d+: ", line) else line[2:]
        found.append(said.removeprefix("User said: "))
    return found


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
