"""The chat model factory: any OpenAI-compatible server, or the offline model."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from graph.offline import OfflineChatModel


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
    return ChatOpenAI(
        model=model,
        api_key=SecretStr(api_key or "not-needed"),
        base_url=base_url,
        timeout=timeout_s,
        max_retries=max_retries,
        streaming=True,
        stream_usage=True,
    )
