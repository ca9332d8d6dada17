"""Starts the embedded services the settings ask for and hands back where they listen.

Each child leaves a pid file under ``<data dir>/run/`` and carries the data dir in its command
line, so that a start finds (and clears) a child that a crashed medkg left behind on the same
data dir, and never touches another data dir's servers.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from assistant.processes import embedded_llm
from assistant.processes.supervisor import ManagedService, ServiceError, free_port
from assistant.settings import Settings
from kg import server as graph_server


def _http_ok(url: str, timeout_s: float = 1.0) -> bool:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return bool(response.status in (200, 204))


def run_dir(settings: Settings) -> Path:
    """Where the pid files of the embedded servers live."""
    return settings.data_dir / "run"


def embedded_llm_service(settings: Settings, port: int | None = None) -> ManagedService:
    port = port or free_port()
    model = settings.llm.gguf_path or embedded_llm.default_gguf_path()
    if not Path(model).is_file():
        raise ServiceError(f"LLM model file not found: {model}")
    owner = str(settings.data_dir.resolve())
    return ManagedService(
        "embedded LLM (llama.cpp)",
        embedded_llm.server_argv(
            port,
            Path(model),
            alias=settings.llm.model,
            threads=settings.llm.threads,
            context_length=settings.llm.context_length,
            parallel=settings.llm.parallel_slots,
            owner=owner,
        ),
        ready=lambda: _http_ok(f"http://127.0.0.1:{port}/health"),
        log_path=settings.logs_dir / "llm.log",
        ports=[port],
        start_timeout_s=settings.llm.start_timeout_s,
        key="llm",
        # Generous: a busy llama.cpp still answers /health from its HTTP threads.
        alive=lambda: _http_ok(f"http://127.0.0.1:{port}/health", timeout_s=5.0),
        pid_file=run_dir(settings) / "llm.pid",
        owner_marker=["assistant.processes.embedded_llm", "--owner", owner],
    )


def llm_base_url(service: ManagedService) -> str:
    port = service.ports[0]
    return f"http://127.0.0.1:{port}/v1"


def embedded_graph_service(
    settings: Settings, bolt_port: int | None = None, http_port: int | None = None
) -> ManagedService:
    bolt_port = bolt_port or free_port()
    http_port = http_port or free_port()
    root = settings.graph_dir
    ready_file = root / "ready"

    def prepare() -> None:
        # A killed server cannot remove its ready file: the new one must not look ready at once.
        ready_file.unlink(missing_ok=True)

    return ManagedService(
        "embedded graph (ArcadeDB Bolt)",
        graph_server.server_argv(
            root,
            http_port,
            bolt_port,
            settings.graph.password.get_secret_value(),
            settings.graph.database,
            settings.graph.embedded_heap,
            ready_file,
        ),
        ready=ready_file.exists,
        log_path=settings.logs_dir / "graph.log",
        ports=[bolt_port, http_port],
        env={"MEDKG_GRAPH_SERVER_PASSWORD": settings.graph.password.get_secret_value()},
        start_timeout_s=settings.graph.start_timeout_s,
        key="graph",
        # Through the JVM's HTTP stack (a hung JVM still accepts TCP connections on Bolt).
        alive=lambda: _http_ok(f"http://127.0.0.1:{http_port}/api/v1/ready", timeout_s=5.0),
        pid_file=run_dir(settings) / "graph.pid",
        owner_marker=["kg.server", "--root", str(root)],
        prepare=prepare,
    )


def graph_uri(service: ManagedService) -> str:
    return f"bolt://127.0.0.1:{service.ports[0]}"
