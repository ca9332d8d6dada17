"""The app factory: one FastAPI app with the JSON API under /v1 and the Gradio UI at /."""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI

from assistant.app import App
from assistant.indexing import index_progress
from assistant.settings import Settings
from ui.api.access_log import AccessLogMiddleware
from ui.api.deadlines import DeadlineMiddleware
from ui.api.limits import BodySizeLimitMiddleware
from ui.api.problems import install_problem_handlers
from ui.api.routes import build_router
from ui.health import (
    graph_probe,
    llm_probe,
    retriever_probe,
    static_probe,
    supervisor_status,
    vision_probe,
)
from ui.reporting import report_service_for
from ui.services import AppServices, ConsultationService, HealthProbe, ReportService

log = logging.getLogger(__name__)

API_DESCRIPTION = """\
medkg: knowledge-graph-grounded diagnostic assistant. **Decision support, not a doctor.**

Every error is `application/problem+json` (RFC 9457). When API keys are configured, send
`Authorization: Bearer <key>` or `X-API-Key: <key>`.
"""


def create_app(
    settings: Settings,
    *,
    assembled: App | None = None,
    consultation: ConsultationService | None = None,
    report_service: ReportService | None = None,
    with_ui: bool = True,
) -> FastAPI:
    """The HTTP app over parts assembled by ``assistant.app.open_app`` (``assembled``), or over
    an injected consultation and report service (tests of the interface alone)."""
    if assembled is not None:
        consultation = consultation or assembled.consultation
        if report_service is None:
            report_service = report_service_for(assembled)
    if consultation is None:
        raise ValueError("create_app needs the assembled app (open_app) or a consultation service")
    services = AppServices(
        settings=settings,
        consultation=consultation,
        reports=report_service,
        probes=_probes(settings, assembled),
    )

    app = FastAPI(
        title="medkg",
        version=_version(),
        description=API_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.services = services
    install_problem_handlers(app)
    app.include_router(build_router(services))
    # Outermost first: the size limit refuses a body before anything else reads it.
    app.add_middleware(DeadlineMiddleware, timeout_s=settings.server.request_timeout_s)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.server.max_request_bytes)

    if with_ui:
        from ui.web import mount_ui

        mount_ui(app, services)
    return app


def _probes(settings: Settings, assembled: App | None) -> dict[str, HealthProbe]:
    if assembled is None:
        reason = "no assembled app behind this interface (built with an injected consultation)"
        return {name: static_probe("unknown", reason) for name in ("llm", "graph", "retriever", "vision")}
    return {
        # The supervisor's view first: a server being restarted is "degraded", not "error".
        "llm": llm_probe(settings, supervisor_status(assembled, "llm")),
        "graph": graph_probe(assembled.graph, supervisor_status(assembled, "graph")),
        # Read at each probe: a background index build attaches the retriever later.
        "retriever": retriever_probe(
            lambda: assembled.retriever, lambda: assembled.disabled.get("retriever"), index_progress
        ),
        "vision": vision_probe(image_encoder_of(assembled), assembled.disabled.get("vision")),
    }


def image_encoder_of(assembled: App) -> Any | None:
    """The image encoder (held by the image analyzer), or None when vision is off."""
    return getattr(assembled.image_analyzer, "encoder", None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medkg")
    except PackageNotFoundError:
        return "0+unknown"


class BackgroundServer:
    """uvicorn serving an app on a free loopback port in a thread (tests and benchmarks)."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        import threading

        import uvicorn

        from assistant.processes.supervisor import free_port

        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="medkg-background-server", daemon=True)

    def __enter__(self) -> BackgroundServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
