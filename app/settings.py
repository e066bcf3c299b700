"""Threadline's settings: environment variables, read once, passed down."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel
from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph.llm import Models, build_chat_model
from memory.embeddings import Embedder, build_embedder
from threads.options import ThreadOptions

# The offline model's turns are CPU work on the event loop: past a few at once,
# each only waits for the others (docs/benchmarks.md, ws_load).
OFFLINE_GRAPH_SLOTS = 8


class Settings(BaseSettings):
    """Every knob of a Threadline process.

    `DATABASE_URL`, `OPENAI_API_KEY` and `OPENAI_BASE_URL` keep their customary
    names; everything else is `THREADLINE_<NAME>`.
    """

    model_config = SettingsConfigDict(env_prefix="THREADLINE_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "THREADLINE_DATABASE_URL")
    )
    # A pooler in transaction mode (PgBouncer) in front of DATABASE_URL, for the
    # server's pooled queries; DATABASE_URL itself still serves migrations, the
    # thread locks and LISTEN/NOTIFY, which need a session (docs/scaling.md).
    pooled_database_url: SecretStr | None = None
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "THREADLINE_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "THREADLINE_OPENAI_BASE_URL")
    )
    model: str = "gpt-4o-mini"
    model_timeout_s: float = 60.0
    model_max_retries: int = 2

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    https: bool = False
    allowed_origins: list[str] = []

    window_messages: int = Field(default=20, ge=2)
    agent_max_steps: int = Field(default=4, ge=2, le=20)  # execution passes in one answer
    max_message_chars: int = Field(default=32_000, ge=1)
    max_import_bytes: int = Field(default=64 * 2**20, ge=1024)
    max_frame_bytes: int = Field(default=256_000, ge=1024)
    # permessage-deflate on the WebSocket: off, since frames are small (a token,
    # a progress step) and deflating each cost more CPU than it saved bytes
    # (docs/benchmarks.md, the fast path); on for clients on slow links.
    ws_compression: bool = False
    anon_ttl_hours: float = 24.0
    retention_days: float | None = None
    cleanup_interval_s: float = Field(default=600, ge=0)  # 0 turns periodic cleanup off
    cleanup_forgets_memories: bool = False
    checkpoints_keep: int = Field(default=1, ge=1)
    durability: Literal["exit", "async", "sync"] = "exit"
    # Turns whose graph runs at once in one process; the others are acknowledged
    # (journaled) and wait for a slot. 0: no bound. Unset: OFFLINE_GRAPH_SLOTS
    # with the offline model (its turns are all CPU: more at once only slow every
    # one down), no bound with a remote model (its turns mostly wait for it).
    graph_slots: int | None = Field(default=None, ge=0)
    offline_token_delay_ms: int = Field(default=0, ge=0)
    rate_limits: Literal["on", "off"] = "on"
    token_ttl_days: float = 30.0
    memory_summaries: int = Field(default=4, ge=0, le=20)
    memory_budget_tokens: int = Field(default=1500, ge=100)
    # Recall by meaning (memory/embeddings.py): `local` runs a model shipped in
    # a PyPI wheel on the CPU; `openai` any OpenAI-compatible /v1/embeddings.
    embeddings: Literal["local", "openai", "off"] = "local"
    embeddings_base_url: str | None = None
    embeddings_model: str | None = None
    embeddings_api_key: SecretStr | None = None
    # Test hook: wait this long after `done` before saving memories, so a test
    # can kill the server in between. 0 in production.
    memory_save_delay_ms: int = Field(default=0, ge=0)
    db_pool_size: int = Field(default=10, ge=2)
    shutdown_grace_s: float = 20.0

    # Hardening (docs/security.md). Each is read in one place; see its user.
    max_import_sessions: int = Field(default=1000, ge=1)  # sessions in one import
    max_json_depth: int = Field(default=32, ge=4)  # nesting of any JSON we parse
    outbox_frames: int = Field(default=2000, ge=10)  # frames queued per socket
    outbox_bytes: int = Field(default=8 * 2**20, ge=65536)  # bytes queued per socket
    trusted_hosts: list[str] = []  # Host names served besides loopback and `host`
    metrics: Literal["off", "loopback", "on"] = "loopback"  # who may read /metrics
    api_docs: Literal["off", "loopback", "on"] = "loopback"  # /docs and /openapi.json

    def pooled_url(self) -> str | None:
        """THREADLINE_POOLED_DATABASE_URL, when set (only with DATABASE_URL)."""
        if self.pooled_database_url is None or self.database_url is None:
            return None
        return self.pooled_database_url.get_secret_value()

    @property
    def uses_openai(self) -> bool:
        """The real model is used as soon as a key or an endpoint is configured."""
        return self.openai_api_key is not None or self.openai_base_url is not None

    def thread_options(self, *, db_pool_size: int | None = None) -> ThreadOptions:
        """What the thread layer needs of these settings."""
        return ThreadOptions(
            window_messages=self.window_messages,
            agent_max_steps=self.agent_max_steps,
            max_message_chars=self.max_message_chars,
            max_import_sessions=self.max_import_sessions,
            max_json_depth=self.max_json_depth,
            durability=self.durability,
            graph_slots=self.graph_slots_in_use(),
            checkpoints_keep=self.checkpoints_keep,
            anon_ttl=timedelta(hours=self.anon_ttl_hours),
            retention=timedelta(days=self.retention_days) if self.retention_days else None,
            memory_summaries=self.memory_summaries,
            memory_budget_tokens=self.memory_budget_tokens,
            memory_save_delay_ms=self.memory_save_delay_ms,
            cleanup_interval_s=self.cleanup_interval_s,
            cleanup_forgets_memories=self.cleanup_forgets_memories,
            shutdown_grace_s=self.shutdown_grace_s,
            db_pool_size=db_pool_size or self.db_pool_size,
        )

    def graph_slots_in_use(self) -> int:
        if self.graph_slots is not None:
            return self.graph_slots
        return 0 if self.uses_openai else OFFLINE_GRAPH_SLOTS

    def embedder(self) -> Embedder | None:
        """The configured embedder; None with `THREADLINE_EMBEDDINGS=off`."""
        key = self.embeddings_api_key or self.openai_api_key
        return build_embedder(
            self.embeddings,
            base_url=self.embeddings_base_url or self.openai_base_url,
            model=self.embeddings_model,
            api_key=key.get_secret_value() if key else None,
        )

    def chat_model(self, name: str | None = None) -> BaseChatModel:
        """ChatOpenAI when a key or an endpoint is set, else the offline model;
        `name`: another model of the same endpoint than THREADLINE_MODEL."""
        return build_chat_model(
            api_key=self.openai_api_key.get_secret_value() if self.openai_api_key else None,
            base_url=self.openai_base_url,
            model=name or self.model,
            timeout_s=self.model_timeout_s,
            max_retries=self.model_max_retries,
            offline_token_delay_ms=self.offline_token_delay_ms,
        )

    def models(self) -> Models:
        """The default model and, with an endpoint, the others it lists (per chat)."""
        default = self.chat_model()
        if not self.uses_openai:
            return Models.single(default)
        return Models(
            default,
            self.model,
            api_key=self.openai_api_key.get_secret_value() if self.openai_api_key else None,
            base_url=self.openai_base_url,
            make=self.chat_model,
        )


def settings_errors(exc: ValidationError) -> list[str]:
    """What is wrong with the environment, one line per variable, as it is named
    there (`THREADLINE_PORT`, `DATABASE_URL`); the values are not repeated (one
    may be a secret)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        alias = (
            Settings.model_fields[field].validation_alias
            if field in Settings.model_fields
            else None
        )
        names = alias.choices if isinstance(alias, AliasChoices) else []
        name = str(names[0]) if names else f"THREADLINE_{field.upper()}"
        lines.append(f"{name}: {error['msg']}")
    return lines
