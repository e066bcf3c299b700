"""The chat model factory: any OpenAI-compatible server, or the offline model."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from openai import APIStatusError, AsyncOpenAI, OpenAIError
from pydantic import SecretStr

from graph.offline import OfflineChatModel

log = logging.getLogger(__name__)


_warned: set[tuple[str, str, str]] = set()  # (endpoint, model, what) already logged


def warn_once(model: BaseChatModel, what: str) -> None:
    """Log what a model's endpoint lacks ("refuses tools") once per endpoint and
    model, not at every turn it shows again."""
    endpoint = str(getattr(model, "openai_api_base", "") or "")
    name = str(getattr(model, "model_name", "") or type(model).__name__)
    if (endpoint, name, what) not in _warned:
        _warned.add((endpoint, name, what))
        log.warning("the model %s %s", name, what)


class EndpointChatModel(ChatOpenAI):
    """`ChatOpenAI` for any OpenAI-compatible endpoint. A streamed answer asks for
    its token usage (`stream_options`), unless the endpoint refuses to be asked:
    Azure's older API versions, Mistral, xAI and others answer 400 or 422 to it,
    which would fail every turn. Then that call is made again without, no later
    one asks, and the answer's tokens are estimated (graph/nodes.py: response)."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        started = False
        try:
            async for chunk in super()._astream(*args, **kwargs):
                started = True
                yield chunk
        except APIStatusError as exc:
            if started or not self.stream_usage or "stream_options" not in str(exc):
                raise
            self.stream_usage = False
            warn_once(self, "refuses stream_options: token counts are estimated")
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk


def build_chat_model(
    *,
    api_key: str | None,
    base_url: str | None,
    model: str,
    timeout_s: float = 60.0,
    max_retries: int = 2,
    offline_token_delay_ms: int = 0,
) -> BaseChatModel:
    """`ChatOpenAI` when a key or an endpoint is given, else the offline model.

    A local server (vLLM, Ollama, llama.cpp) usually needs no key; the client
    insists on one, so a placeholder is sent.
    """
    if api_key is None and base_url is None:
        return OfflineChatModel(token_delay_ms=offline_token_delay_ms)
    return EndpointChatModel(
        model=model,
        api_key=SecretStr(api_key or "not-needed"),
        base_url=base_url,
        timeout=timeout_s,
        max_retries=max_retries,
        streaming=True,
        stream_usage=True,
    )


LIST_CACHE_S = 60.0  # how long the endpoint's list of models is trusted


class Models:
    """The models a chat may use: the configured default and, with an
    OpenAI-compatible endpoint, every model it lists (`GET /models`, read at most
    once a minute). A chat that names none, or one no longer listed, gets the
    default; the offline model is the only one without an endpoint."""

    def __init__(
        self,
        default: BaseChatModel,
        default_name: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        make: Callable[[str], BaseChatModel] | None = None,
    ) -> None:
        self.default, self.default_name = default, default_name
        self.api_key, self.base_url, self.make = api_key, base_url, make
        self._built: dict[str, BaseChatModel] = {default_name: default}
        self._listed: tuple[float, list[str]] = (float("-inf"), [default_name])

    @classmethod
    def single(cls, model: BaseChatModel) -> Models:
        """Just this model (the offline one, or one given by a test)."""
        return cls(model, "offline" if isinstance(model, OfflineChatModel) else model._llm_type)

    async def names(self) -> list[str]:
        """The default first, then what the endpoint lists (sorted); just the default
        when there is no endpoint or it does not answer."""
        listed_at, names = self._listed
        if self.make is None or time.monotonic() - listed_at < LIST_CACHE_S:
            return names
        try:
            client = AsyncOpenAI(
                api_key=self.api_key or "not-needed", base_url=self.base_url, timeout=5.0
            )
            found = sorted({model.id async for model in client.models.list()})
        except OpenAIError:
            log.warning("the model endpoint did not list its models")
            found = []
        names = [self.default_name, *(n for n in found if n != self.default_name)]
        self._listed = (time.monotonic(), names)
        return names

    def named(self, name: str | None) -> BaseChatModel:
        """The model called `name` (built once), or the default."""
        if name is None or self.make is None or name not in self._listed[1]:
            return self.default
        if name not in self._built:
            self._built[name] = self.make(name)
        return self._built[name]
