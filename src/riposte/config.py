"""One settings object, read from an optional YAML file and `RIPOSTE_*` environment variables."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riposte.api.websocket_settings import WebSocketSettings
from riposte.auth.settings import AuthSettings
from riposte.engine.context_windows import ContextSettings
from riposte.engine.input_urls import InputUrlSettings
from riposte.guardrails.settings import GuardrailSettings
from riposte.json_depth import DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_CEILING
from riposte.outbound import OutboundPolicy
from riposte.sealing import SealingKey
from riposte.ui.settings import InspectorSettings


class InferenceMode(str, Enum):
    LIVE = "live"
    RECORD = "record"
    REPLAY = "replay"
    RECORD_IF_MISSING = "record-if-missing"


class ProviderConfig(BaseModel):
    """A named OpenAI-compatible upstream."""

    model_config = ConfigDict(extra="forbid")

    name: str
    base_url: str
    api_key: str | None = None
    api_key_env: str | None = None
    models: list[str] | None = Field(default=None, description="optional allow-list of upstream model names")
    # Older servers (llama.cpp, some Ollama builds) only know `max_tokens`.
    max_tokens_param: str = "max_completion_tokens"
    # Deadlines on every upstream call; each one that fires fails the call with a message naming it.
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # From sending the request to the first byte of the body: the model's time to its first token.
    first_byte_timeout_seconds: float = Field(default=300.0, gt=0)
    # Longest silence between two reads of a streamed body once it has started.
    idle_timeout_seconds: float = Field(default=120.0, gt=0)
    # The whole call, connecting included: bounds a drip that never goes idle.
    total_timeout_seconds: float = Field(default=1800.0, gt=0)
    # How long an idle pooled connection is kept for reuse. Below the 5 s keep-alive of uvicorn
    # (vLLM, most Python servers), nginx's 75 s and cloud load balancers' 60 s, so the pool drops a
    # connection before the upstream does; the rare race that remains is retried once.
    keepalive_seconds: float = Field(default=4.0, ge=0)
    # When the backend paces its tokens, read its stream at most once per this window: the tokens
    # of one window share one pass through the server and one write to the client (CPU per token
    # at 5 ms pacing, bench/RESULTS.md). A token waits at most this long; the first never does.
    paced_read_window_ms: float = Field(default=20.0, ge=0, le=1000)
    # While the server falls behind (its event loop runs late), the window widens up to this, so
    # each pass carries more tokens and the process catches up; back to the one above once calm.
    paced_read_window_max_ms: float = Field(default=80.0, ge=0, le=1000)
    # The backend takes Chat Completions `custom` tools with a grammar `format` and constrains
    # decoding to it (OpenAI does). Otherwise a custom tool is a function of one string, and its
    # grammar is described to the model in the tool's description.
    constrained_custom_tools: bool = False
    # Whether the backend takes Chat Completions' `verbosity` (OpenAI's gpt-5 family does); only
    # then does a request's `text.verbosity` go upstream.
    supports_verbosity: bool = False

    def resolved_api_key(self) -> str:
        if self.api_key:
            return self.api_key
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        # Local servers (vLLM, Ollama) accept any key, and the SDK refuses an empty one.
        return "none"


class SearchApiConfig(BaseModel):
    """A web search provider reached over HTTP (Tavily, Brave)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    api_key: str | None = None
    api_key_env: str

    def resolved_api_key(self) -> str | None:
        return self.api_key or os.environ.get(self.api_key_env) or None


class TavilyConfig(SearchApiConfig):
    base_url: str = "https://api.tavily.com"
    api_key_env: str = "TAVILY_API_KEY"


class BraveConfig(SearchApiConfig):
    base_url: str = "https://api.search.brave.com/res/v1"
    api_key_env: str = "BRAVE_API_KEY"


class OfflineCorpusConfig(BaseModel):
    """The local corpus the offline web search provider searches; either or both sources."""

    model_config = ConfigDict(extra="forbid")

    # A folder of documents, each carrying its URL and title (see the README).
    directory: Path | None = None
    # A vector store of this server whose files carry `url` and `title` attributes.
    vector_store_id: str | None = None

    @property
    def configured(self) -> bool:
        return self.directory is not None or self.vector_store_id is not None


class WebSearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Which provider serves tools with external web access; None picks the first one set up:
    # Tavily or Brave with a key, else the offline corpus.
    provider: Literal["tavily", "brave", "offline"] | None = None
    tavily: TavilyConfig = Field(default_factory=TavilyConfig)
    brave: BraveConfig = Field(default_factory=BraveConfig)
    offline: OfflineCorpusConfig = Field(default_factory=OfflineCorpusConfig)
    timeout_seconds: float = Field(default=20.0, gt=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8321
    workers: int = 1
    data_dir: Path = Path(".riposte")
    database_url: str | None = None
    inference_mode: InferenceMode = InferenceMode.LIVE
    recordings_dir: Path | None = None
    providers: list[ProviderConfig] = Field(default_factory=list)
    default_provider: str | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    # How deeply a JSON request body may nest (json_depth.py); deeper bodies get a 400.
    max_json_depth: int = Field(default=DEFAULT_MAX_JSON_DEPTH, ge=2, le=MAX_JSON_DEPTH_CEILING)
    # Items one request's `input` may hold (a 400 beyond): each costs work on the event loop before
    # the turn starts, so the count bounds how long one request can hold up the others.
    max_input_items: int = Field(default=10_000, ge=1)
    max_infer_iters: int = 10
    # Characters of output (text, refusal, reasoning, tool arguments) one response may produce;
    # beyond it the turn ends `incomplete`. About a million tokens: far above any model's limit.
    max_output_chars: int = Field(default=4_000_000, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    # OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); tracing is off without it.
    otlp_traces_endpoint: str | None = None
    # Files and vector stores.
    max_file_bytes: int = 512 * 1024 * 1024
    default_embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # auto: pgvector when the database is PostgreSQL and has the extension, else sqlite-vec.
    vector_index: Literal["auto", "sqlite-vec", "pgvector"] = "auto"
    ingest_concurrency: int = Field(default=2, ge=1, le=64)
    # Keys that seal encrypted reasoning, newest first (URL-safe base64 of 32 bytes); the first
    # seals, all open. Empty: a key generated once into <data_dir>/sealing-keys (riposte sealing-keys).
    sealing_keys: list[str] = Field(default_factory=list)
    web_search: WebSearchSettings = Field(default_factory=WebSearchSettings)
    # What the server may fetch on a client's behalf (MCP servers, search providers): riposte/outbound.py.
    outbound: OutboundPolicy = Field(default_factory=OutboundPolicy)
    # Image URLs in the input: forwarded to the backend, or fetched by the server and inlined.
    input_urls: InputUrlSettings = Field(default_factory=InputUrlSettings)
    # Text extraction (PDF, HTML) runs in a child process with these limits; past them the file fails.
    extraction_timeout_seconds: float = Field(default=60.0, gt=0)
    extraction_memory_mb: int = Field(default=1024, ge=64)
    # Crash recovery: each process beats this often; one silent for `instance_stale_seconds` is dead
    # (on the same host a dead process is known at once). Its turns fail; its ingestions resume,
    # up to `ingest_max_attempts` starts per file.
    instance_heartbeat_seconds: float = Field(default=10.0, gt=0)
    instance_stale_seconds: float = Field(default=30.0, gt=0)
    ingest_max_attempts: int = Field(default=2, ge=1)
    # Authentication, browser protections and limits (docs/SECURITY.md).
    auth: AuthSettings = Field(default_factory=AuthSettings)
    # Serve a non-loopback address with no key configured: anyone who reaches the port is trusted.
    insecure_no_auth: bool = False
    # Connecting to an MCP server, its handshake, a listing, and each tool call.
    mcp_timeout_seconds: float = Field(default=30.0, gt=0)
    # The web inspector at /ui and the turn traces it shows (README "Web inspector").
    inspector: InspectorSettings = Field(default_factory=InspectorSettings)
    # WebSocket mode on /v1/responses (api/websocket.py).
    websocket: WebSocketSettings = Field(default_factory=WebSocketSettings)
    # Moderation of input and output by named guards (riposte/guardrails/, README "Guardrails").
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    # Context windows per model, and how compaction summarizes (engine/context_windows.py).
    context: ContextSettings = Field(default_factory=ContextSettings)
    # Background responses (README "Background responses"): turns run at once by this process's
    # workers, how often an idle process looks for queued jobs (and for cancel requests), how long a
    # claim lasts unless renewed, and how many starts a job gets before it fails.
    background_workers: int = Field(default=8, ge=0, le=256)
    background_poll_seconds: float = Field(default=0.5, gt=0)
    background_lease_seconds: float = Field(default=30.0, gt=0)
    background_max_attempts: int = Field(default=3, ge=1)
    # Stream resume: stored streams' events are written in one statement per interval (group
    # commit); a reader following a response run by another process polls this often.
    event_flush_seconds: float = Field(default=0.05, gt=0)
    resume_poll_seconds: float = Field(default=0.2, gt=0)
    # Also store the events of ordinary (not background) stored streams, so they can be resumed
    # too. Off by default, as OpenAI resumes background responses only: the log costs a paced
    # stream about a tenth of its CPU and most of its first token's wait (bench/RESULTS.md).
    stream_resume: bool = False
    # SIGTERM: open requests (streams) get this long to finish; background jobs then go back to the queue.
    shutdown_grace_seconds: int = Field(default=30, ge=0)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.providers:
            self.providers = [_provider_from_openai_env()]
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique, got {names}")
        if self.default_provider is None:
            self.default_provider = self.providers[0].name
        elif self.default_provider not in names:
            raise ValueError(f"default_provider {self.default_provider!r} is not one of {names}")
        return self

    @field_validator("sealing_keys")
    @classmethod
    def _valid_sealing_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            SealingKey.from_text(key)  # a ValueError names what is wrong
        return keys

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'riposte.db').resolve()}"

    @property
    def resolved_recordings_dir(self) -> Path:
        return self.recordings_dir if self.recordings_dir is not None else self.data_dir / "recordings"


def _provider_from_openai_env() -> ProviderConfig:
    return ProviderConfig(
        name="openai",
        base_url=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        api_key_env="OPENAI_API_KEY",
    )


# Flat settings that can come from the environment, e.g. RIPOSTE_DATABASE_URL.
_ENV_FIELDS = (
    "host",
    "port",
    "workers",
    "data_dir",
    "database_url",
    "inference_mode",
    "recordings_dir",
    "default_provider",
    "max_request_bytes",
    "max_json_depth",
    "max_input_items",
    "max_infer_iters",
    "mcp_timeout_seconds",
    "max_output_chars",
    "log_level",
    "log_format",
    "otlp_traces_endpoint",
    "max_file_bytes",
    "default_embedding_model",
    "vector_index",
    "ingest_concurrency",
    "extraction_timeout_seconds",
    "extraction_memory_mb",
    "instance_heartbeat_seconds",
    "instance_stale_seconds",
    "ingest_max_attempts",
    "insecure_no_auth",
    "background_workers",
    "background_poll_seconds",
    "background_lease_seconds",
    "background_max_attempts",
    "event_flush_seconds",
    "resume_poll_seconds",
    "stream_resume",
    "shutdown_grace_seconds",
)


class SettingsError(Exception):
    pass


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Merge, lowest first: the YAML file, `RIPOSTE_*` variables, then explicit overrides (the CLI)."""
    raw: dict[str, Any] = {}
    path = config_file or _env_path("RIPOSTE_CONFIG")
    if path is not None:
        raw.update(_read_yaml(path))
    for field in _ENV_FIELDS:
        value = os.environ.get(f"RIPOSTE_{field.upper()}")
        if value:
            raw[field] = value
    if os.environ.get("RIPOSTE_SEALING_KEYS"):
        raw["sealing_keys"] = [k.strip() for k in os.environ["RIPOSTE_SEALING_KEYS"].split(",") if k.strip()]
    if os.environ.get("RIPOSTE_RECORDINGS"):
        raw["recordings_dir"] = os.environ["RIPOSTE_RECORDINGS"]
    _web_search_from_env(raw)
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(str(exc)) from exc


def _web_search_from_env(raw: dict[str, Any]) -> None:
    """`RIPOSTE_WEB_SEARCH_PROVIDER` and `RIPOSTE_WEB_SEARCH_CORPUS` (a folder) over the file's values."""
    provider = os.environ.get("RIPOSTE_WEB_SEARCH_PROVIDER")
    corpus = os.environ.get("RIPOSTE_WEB_SEARCH_CORPUS")
    if not provider and not corpus:
        return
    section = dict(raw.get("web_search") or {})
    if provider:
        section["provider"] = provider
    if corpus:
        section["offline"] = {**(section.get("offline") or {}), "directory": corpus}
    raw["web_search"] = section


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a mapping at the top level")
    return data
