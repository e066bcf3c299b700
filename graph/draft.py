"""The streaming draft: one model call streamed into the answer as it grows,
its text forwarded as `token` events the moment it comes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
import openai
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool

from graph.context import TurnContext
from graph.errors import ModelUnavailable
from graph.llm import warn_once
from graph.state import Draft
from graph.streaming import run_until_cancelled

log = logging.getLogger(__name__)


async def stream_reply(
    model: Runnable[Any, Any],
    messages: list[BaseMessage],
    ctx: TurnContext,
    write: Any,
    draft: Draft,
) -> AIMessageChunk | None:
    """Stream one model call into `draft` (text as it comes, so a failure keeps
    it), forwarding text as `token` events; return the whole reply (what came
    before a cancel, when the user cancels).

    The chunks are joined once, at the end: adding each to the reply so far
    copies the reply and builds a new message every chunk (quadratic in the
    answer's length; 4% of a short turn's CPU, measured)."""
    chunks: list[AIMessageChunk] = []
    text = draft["content"]
    lead = "\n\n" if text and not text[-1].isspace() else ""  # after a tool step

    async def pump() -> None:
        nonlocal lead
        stream = model.astream(messages)
        try:
            async for chunk in stream:
                piece = chunk.content if isinstance(chunk.content, str) else ""
                if piece:
                    piece, lead = lead + piece, ""
                    draft["content"] += piece
                    write({"type": "token", "content": piece})
                if chunk.usage_metadata:
                    draft["token_count"] += chunk.usage_metadata.get("output_tokens", 0)
                chunks.append(chunk)
        finally:
            aclose = getattr(stream, "aclose", None)  # a cancelled stream lets go of
            if aclose is not None:  # its connection now
                with contextlib.suppress(Exception):
                    await aclose()

    await run_until_cancelled(pump(), ctx.cancel)
    return add_ai_message_chunks(chunks[0], *chunks[1:]) if chunks else None


# What a server answers to a request it will not take as made (to tools offered,
# say): 400, or 422 from a strict one (Mistral's, and servers validating with
# pydantic).
REFUSED = (openai.BadRequestError, openai.UnprocessableEntityError)


class ToolsRefused(Exception):
    """The model's server refused (`REFUSED`) to be offered tools, before any text:
    a model without function calling (Ollama models without tool support, vLLM
    without auto tool choice). The caller asks again without them."""


async def ask_model(
    ctx: TurnContext, tools: list[BaseTool], messages: list[BaseMessage], write: Any, draft: Draft
) -> AIMessageChunk | None:
    """One model call, offering `tools`. A failure before any answer text fails
    the turn (ModelUnavailable); after some, it ends the answer with an error.
    A refusal (400, 422) of the tools, before any text, raises ToolsRefused."""
    model = ctx.model.bind_tools(tools) if tools else ctx.model
    try:
        return await stream_reply(model, messages, ctx, write, draft)
    except Exception as exc:  # the model's client raises many kinds; all mean "unavailable"
        if isinstance(exc, REFUSED) and tools and not draft["content"]:
            warn_once(ctx.model, "refuses tools: memory requests are recognised by pattern")
            raise ToolsRefused from exc
        log.warning("model call failed: %s", type(exc).__name__, exc_info=True)
        if not draft["content"]:
            raise ModelUnavailable(f"The model is unavailable: {in_words(exc)}.") from exc
        draft["error_message"] = f"The answer was cut off: {in_words(exc)}."
        return None


def in_words(exc: BaseException) -> str:
    """What a model client's failure means, for the person reading the chat."""
    if isinstance(exc, openai.APITimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return "it took too long to answer"
    if isinstance(exc, openai.RateLimitError):
        return "its server is busy (too many requests); try again in a moment"
    if isinstance(exc, openai.APIConnectionError | ConnectionError | httpx.TransportError):
        return "the connection to it was lost"
    if isinstance(exc, openai.APIStatusError):
        return f"its server answered with an error ({exc.status_code})"
    return "it stopped unexpectedly"
