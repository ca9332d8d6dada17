"""Starts the embedded services the settings ask for and hands back where they listen."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from assistant import embedded_llm
from assistant.settings import Settings
from assistant.supervisor import ManagedService, ServiceError, ServiceGroup, free_port
from kg import server as graph_server

if TYPE_CHECKING:
    from kg import LoadReport, Neo4jGraphStore


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1.0) as response:
        return bool(response.status == 200)


def embedded_llm_service(settings: Settings, port: int | None = None) -> ManagedService:
    port = port or free_port()
    model = settings.llm.gguf_path or embedded_llm.default_gguf_path()
    if not Path(model).is_file():
        raise ServiceError(f"LLM model file not found: {model}")
    return ManagedService(
        "embedded LLM (llama.cpp)",
        embedded_llm.server_argv(
            port,
            Path(model),
            alias=settings.llm.model,
            threads=settings.llm.threads,
            context_length=settings.llm.context_length,
            parallel=settings.llm.parallel_slots,
        ),
        ready=lambda: _http_ok(f"http://127.0.0.1:{port}/health"),
        log_path=settings.logs_dir / "llm.log",
        ports=[port],
        start_timeout_s=settings.llm.start_timeout_s,
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
    )


def graph_uri(service: ManagedService) -> str:
    return f"bolt://127.0.0.1:{service.ports[0]}"


def start_embedded(settings: Settings, group: ServiceGroup) -> Settings:
    """Start what the settings leave unconfigured; return settings pointing at it all."""
    llm = settings.llm
    graph = settings.graph
    if llm.base_url is None:
        service = group.start(embedded_llm_service(settings))
        llm = llm.model_copy(update={"base_url": llm_base_url(service)})
    if graph.uri is None:
        service = group.start(embedded_graph_service(settings))
        graph = graph.model_copy(update={"uri": graph_uri(service)})
    return settings.model_copy(update={"llm": llm, "graph": graph})


def connect_graph(settings: Settings) -> Neo4jGraphStore:
    """A store on the graph server the settings point at (``graph.uri`` must be set)."""
    from kg import connect

    graph = settings.graph
    if graph.uri is None:
        raise ValueError("no graph URI: set NEO4J_URI, or start the embedded graph first (start_embedded)")
    return connect(
        graph.uri,
        graph.user,
        graph.password.get_secret_value(),
        graph.database,
        timeout_s=graph.query_timeout_s,
    )


def ensure_graph_current(store: Neo4jGraphStore) -> LoadReport | None:
    """Load the shipped graph into an empty database, or refresh one an older medkg loaded
    (other sources or merge rules); None when the graph is already at the shipped version."""
    from kg import load_graph
    from kg.loader import graph_checksum

    stats = store.stats()
    if stats.labels.get("Disease", 0) and stats.checksum == graph_checksum()[0]:
        return None
    return load_graph(store)
