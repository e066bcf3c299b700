"""The graph Aegra serves for bench/peer, loaded by Aegra's own process (its own
venv): LangGraph's stock chat pattern, `MessagesState` with one node, answered
by a fake model that needs no key.

The answer has the shape and length of Threadline's offline reply to the same
question (a fixed sentence, then the question echoed), streamed the same way,
one chunk per word: both servers get the same text from their model, at the
same pace.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import START, MessagesState, StateGraph

# As long as Threadline's offline preamble (graph/offline.py), in as many words.
PREAMBLE = (
    "[fake model] I am the fake chat model of Threadline's peer benchmark (no API key "
    "is set), so I can't reason at all, but I still answer every question the same way, "
    "instantly. You said: "
)
WORD = re.compile(r"\S+\s*|\s+")


def reply_to(messages: list[BaseMessage]) -> str:
    """The fixed sentence, then the last human message echoed (cut at 200 characters)."""
    humans = [m for m in messages if isinstance(m, HumanMessage)]
    question = str(humans[-1].content).strip() if humans else ""
    echo = question if len(question) <= 200 else question[:200] + "…"
    return f"{PREAMBLE}“{echo}”"


class FakeChatModel(BaseChatModel):
    """Deterministic, and streamed word by word; with `token_delay_ms`, it waits
    that long before each word, as Threadline's offline model does with
    THREADLINE_OFFLINE_TOKEN_DELAY_MS."""

    token_delay_ms: int = 0

    @property
    def _llm_type(self) -> str:
        return "peer-bench-fake"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply_to(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for word in WORD.findall(reply_to(messages)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for word in WORD.findall(reply_to(messages)):
            if self.token_delay_ms:
                await asyncio.sleep(self.token_delay_ms / 1000)
            yield ChatGenerationChunk(message=AIMessageChunk(content=word))


# Aegra imports this file in its own process: bench/peer passes the delay in
# the environment it starts that process with.
model = FakeChatModel(token_delay_ms=int(os.environ.get("PEER_TOKEN_DELAY_MS", "0")))


async def answer(state: MessagesState) -> dict[str, list[BaseMessage]]:
    return {"messages": [await model.ainvoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
# Uncompiled: Aegra compiles it and gives it its own checkpointer and store.
graph = builder
