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
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from graph.facts import ANSWERS, asked_about, find_facts, latest_facts

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
    """The reply to the last human message, from what the context says."""
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    question = text_of(humans[-1]).strip() if humans else ""
    context = [text_of(m) for m in messages if m.type in ("system", "human")]
    kind = asked_about(question)
    if kind is not None:
        fact = latest_facts(context).get(kind)
        if fact is not None:
            return f"{LABEL} {ANSWERS[kind].format(value=fact.value)}"
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
        message = AIMessage(content=reply, usage_metadata=usage_of(messages))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tokens = _TOKEN.findall(offline_reply(messages))
        for i, token in enumerate(tokens):
            yield self._chunk(token, messages, final=i == len(tokens) - 1)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tokens = _TOKEN.findall(offline_reply(messages))
        for i, token in enumerate(tokens):
            if self.token_delay_ms:
                await asyncio.sleep(self.token_delay_ms / 1000)
            chunk = self._chunk(token, messages, final=i == len(tokens) - 1)
            if run_manager is not None:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk

    def _chunk(self, text: str, messages: list[BaseMessage], *, final: bool) -> ChatGenerationChunk:
        usage = usage_of(messages) if final else None
        return ChatGenerationChunk(message=AIMessageChunk(content=text, usage_metadata=usage))


def usage_of(messages: list[BaseMessage]) -> UsageMetadata:
    """Estimated token counts, reported with the last chunk as real models do."""
    prompt = sum(estimate_tokens(text_of(m)) for m in messages)
    output = estimate_tokens(offline_reply(messages))
    return UsageMetadata(input_tokens=prompt, output_tokens=output, total_tokens=prompt + output)
