"""A small OpenAI-compatible server for tests: scripted replies, recorded requests,
and failures on demand (429s, 500s, hangs).

    with openai_stub(reply=lambda messages: "hello") as stub:
        model = build_chat_model(api_key=None, base_url=stub.base_url, model="m")
        ...
        assert stub.requests[0].body["stream"] is True

It serves `GET /v1/models` (`listed_models`), `POST /v1/embeddings` (a
deterministic bag-of-words vector per input: texts sharing words are near)
and `POST /v1/chat/completions`, both plain and streaming (SSE chunks
carrying `choices[0].delta.content`, then a usage chunk when
`stream_options.include_usage` is asked for, then `data: [DONE]`). The script
may answer with tool calls instead of (or after) text: a list of
`StubToolCall`, or a `StubAnswer`; they stream as the OpenAI API streams them,
`delta.tool_calls` with the id and name first, then the arguments in fragments.
`cut_after` drops the connection in the middle of a streamed answer. The server
is uvicorn in a background thread, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.server import ServerProcess

Messages = list[dict[str, Any]]


@dataclass
class StubToolCall:
    """A tool call the stub answers with instead of text (as `tool_calls`).

    `arguments` is sent as JSON; a string is sent as it is (say, broken JSON).
    """

    name: str
    arguments: dict[str, Any] | str


@dataclass
class StubAnswer:
    """Text and tool calls in one answer (a model that talks, then calls)."""

    text: str
    calls: list[StubToolCall] = field(default_factory=list)


Reply = Callable[[Messages], "str | list[StubToolCall] | StubAnswer"]


class StubCutOff(Exception):
    """Raised inside a streamed answer: the server drops the connection."""


_PIECE = re.compile(r"\S+\s*|\s+")


def echo_reply(messages: Messages) -> str:
    """The default script: answer the last user message back."""
    users = [m for m in messages if m.get("role") == "user"]
    last = users[-1].get("content", "") if users else ""
    return f"stub says: {last}"


def arguments_text(call: StubToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def tool_calls_json(calls: list[StubToolCall]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{i}_{call.name}",
            "type": "function",
            "function": {"name": call.name, "arguments": arguments_text(call)},
        }
        for i, call in enumerate(calls)
    ]


def tool_call_deltas(calls: list[StubToolCall]) -> list[dict[str, Any]]:
    """`delta.tool_calls` entries as OpenAI streams them: per call, its id, type
    and name with empty arguments, then the arguments in fragments."""
    deltas = []
    for i, call in enumerate(tool_calls_json(calls)):
        name, arguments = call["function"]["name"], call["function"]["arguments"]
        head = {**call, "function": {"name": name, "arguments": ""}}
        deltas.append({"index": i, **head})
        step = max(1, len(arguments) // 3)
        for at in range(0, len(arguments), step):
            deltas.append({"index": i, "function": {"arguments": arguments[at : at + step]}})
    return deltas


def split_answer(answer: str | list[StubToolCall] | StubAnswer) -> tuple[str, list[StubToolCall]]:
    if isinstance(answer, StubAnswer):
        return answer.text, list(answer.calls)
    if isinstance(answer, str):
        return answer, []
    return "", list(answer)


def split_pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is `text`."""
    return _PIECE.findall(text)


@dataclass
class StubRequest:
    """One request the stub received (recorded as it arrives, before any failure)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answered: str = "pending"  # "ok", "429", "500", "hang", ...

    @property
    def messages(self) -> Messages:
        return list(self.body.get("messages", []))


@dataclass
class _Failure:
    status: int
    times: int | None  # None: every request until `recover()`
    retry_after_ms: int | None


def has_tool_messages(body: dict[str, Any]) -> bool:
    """Whether a request's messages carry tool calls or their results."""
    messages = body.get("messages") or []
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)


@dataclass
class OpenAIStub:
    """The stub's script and record; tests change it while the server runs."""

    reply: Reply = echo_reply
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens; None: counted
    chunk_delay_s: float = 0.0
    model_name: str = "stub-model"
    listed_models: list[str] = field(default_factory=lambda: ["stub-model"])  # GET /v1/models
    keep_alive: bool = False  # False: `Connection: close`, so no client socket outlives a test
    cut_after: int | None = None  # drop streamed answers after this many text pieces
    # Answer 400 to a request offering tools, or carrying tool calls or results,
    # as a local server's model without function calling may ("... does not
    # support tools").
    refuses_tools: bool = False
    # Answer 400 to a request asking for streamed usage (`stream_options`), as
    # Azure's older API versions do (Mistral answers 422, xAI 400).
    refuses_stream_options: bool = False
    refusal_status: int = 400  # of both refusals above (a strict server answers 422)
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[StubRequest] = field(default_factory=list)
    _failure: _Failure | None = None
    _hang_s: float | None = None  # None: answer; else hang this long (or until released)
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- addresses --------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client as its base URL."""
        return f"{self.url}/v1"

    def server_env(self, **env: str) -> dict[str, str]:
        """A Threadline server's settings to use this stub as its model (its
        `model_name` unless THREADLINE_MODEL is given), embeddings off."""
        return {
            "OPENAI_BASE_URL": self.base_url,
            "THREADLINE_MODEL": self.model_name,
            "THREADLINE_EMBEDDINGS": "off",
            **env,
        }

    # -- the script -------------------------------------------------------------
    def fail(
        self, status: int = 429, *, times: int | None = None, retry_after_ms: int | None = 10
    ) -> None:
        """Answer `status` to the next `times` requests (None: all until `recover()`).

        `retry_after_ms` is sent as `retry-after-ms` on 429s so clients retry fast.
        """
        with self._lock:
            self._failure = _Failure(status, times, retry_after_ms)
            self._hang_s = None

    def hang(self, seconds: float = 30.0) -> None:
        """Accept requests but answer nothing for `seconds` (or until `recover()`)."""
        with self._lock:
            self._failure = None
            self._hang_s = seconds
            self._release.clear()

    def recover(self) -> None:
        """Answer normally again; requests hanging now are released (with a 503)."""
        with self._lock:
            self._failure = None
            self._hang_s = None
            self._release.set()

    def reset(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    @property
    def completions(self) -> list[StubRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- serving ----------------------------------------------------------------
    def _decide(self) -> tuple[str, _Failure | None, float | None]:
        with self._lock:
            failure, hang_s = self._failure, self._hang_s
            if failure is not None:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failure = None
                return str(failure.status), failure, None
            if hang_s is not None:
                return "hang", None, hang_s
            return "ok", None, None

    async def _wait_released(self, seconds: float) -> None:
        # `recover()` runs on the test's thread, hence a threading.Event.
        await asyncio.to_thread(self._release.wait, seconds)

    async def chat_completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": {"message": "bad json"}}, status_code=400)
        record = StubRequest(request.url.path, dict(request.headers), body)
        with self._lock:
            self.requests.append(record)
        if self.refuses_tools and (body.get("tools") or has_tool_messages(body)):
            record.answered = str(self.refusal_status)
            return JSONResponse(
                {
                    "error": {
                        "message": "this model does not support tools",
                        "type": "invalid_request_error",
                    }
                },
                status_code=self.refusal_status,
            )
        if self.refuses_stream_options and "stream_options" in body:
            record.answered = str(self.refusal_status)
            message = "Unrecognized request argument supplied: stream_options"
            return JSONResponse(
                {"error": {"message": message, "type": "invalid_request_error"}},
                status_code=self.refusal_status,
            )
        outcome, failure, hang_s = self._decide()
        record.answered = outcome
        if failure is not None:
            headers = {}
            if failure.status == 429 and failure.retry_after_ms is not None:
                headers["retry-after-ms"] = str(failure.retry_after_ms)
            kind = "rate_limit_exceeded" if failure.status == 429 else "server_error"
            return JSONResponse(
                {"error": {"message": f"stub says {failure.status}", "type": kind, "code": kind}},
                status_code=failure.status,
                headers=headers,
            )
        if hang_s is not None:
            await self._wait_released(hang_s)
            return JSONResponse({"error": {"message": "stub hung"}}, status_code=503)

        text, calls = split_answer(self.reply(list(body.get("messages", []))))
        pieces = split_pieces(text)
        prompt_tokens, completion_tokens = self.usage or (
            sum(len(str(m.get("content", ""))) // 4 for m in body.get("messages", [])),
            len(pieces),
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        model = str(body.get("model") or self.model_name)
        created = int(time.time())
        completion_id = f"chatcmpl-stub-{len(self.requests)}"
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": text or None,
                                **({"tool_calls": tool_calls_json(calls)} if calls else {}),
                            },
                            "finish_reason": "tool_calls" if calls else "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
            data = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            )
            for n, piece in enumerate(pieces):
                if self.cut_after is not None and n >= self.cut_after:
                    raise StubCutOff("the stub drops the connection mid-answer")
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
                yield chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            for delta in tool_call_deltas(calls):
                yield chunk([{"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}])
            finish = "tool_calls" if calls else "stop"
            yield chunk([{"index": 0, "delta": {}, "finish_reason": finish}])
            if include_usage:
                yield chunk([], usage=usage)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _endpoint(self, request: Request) -> Response:
        response = await self.chat_completions(request)
        if not self.keep_alive:
            response.headers["connection"] = "close"
        return response

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path.endswith("/embeddings")]

    async def embeddings(self, request: Request) -> Response:
        body = json.loads(await request.body())
        with self._lock:
            self.requests.append(StubRequest(request.url.path, dict(request.headers), body))
        _, failure, _ = self._decide()
        if failure is not None:
            return JSONResponse({"error": {"message": "stub fails"}}, status_code=failure.status)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(str(t))}
            for i, t in enumerate(texts)
        ]
        return JSONResponse({"object": "list", "data": data, "model": body.get("model")})

    async def models(self, request: Request) -> Response:
        data = [{"id": name, "object": "model", "owned_by": "stub"} for name in self.listed_models]
        return JSONResponse({"object": "list", "data": data})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/chat/completions", self._endpoint, methods=["POST"]),
                Route("/chat/completions", self._endpoint, methods=["POST"]),
            ]
        )


def bag_of_words(text: str, dims: int = 64) -> list[float]:
    """A stand-in embedding: word counts hashed into `dims` slots (stable across runs)."""
    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        vector[sum(word.encode()) % dims] += 1.0
    return vector


def closed_port_url(host: str = "127.0.0.1") -> str:
    """A base URL nobody listens on: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    return f"http://{host}:{port}/v1"


@contextlib.contextmanager
def openai_stub(reply: Reply = echo_reply, **options: Any) -> Iterator[OpenAIStub]:
    """Run an `OpenAIStub` on 127.0.0.1 for the `with` block.

    It listens on a free port, or on `port=` when given (say, the port of a
    `closed_port_url()`, to bring a refused endpoint back up).
    """
    stub = OpenAIStub(reply=reply, **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((stub.host, stub.port))
    stub.port = sock.getsockname()[1]
    config = uvicorn.Config(
        stub.app(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="openai-stub", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the OpenAI stub did not start")
            time.sleep(0.01)
        yield stub
    finally:
        stub.recover()  # let hanging handlers finish
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextlib.contextmanager
def server_on_stub(
    database_url: str, log_path: Path, stub: OpenAIStub, **env: str
) -> Iterator[ServerProcess]:
    """A started Threadline server whose model is `stub` (see `server_env`)."""
    server = ServerProcess(database_url, log_path, **stub.server_env(**env))
    server.start()
    try:
        yield server
    finally:
        server.stop()
