"""The app factory: one FastAPI app with the JSON API under /v1 and the Gradio UI at /."""

from __future__ import annotations

import logging
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from fastapi import FastAPI

from assistant.settings import Settings
from ui.api.access_log import AccessLogMiddleware
from ui.api.limits import BodySizeLimitMiddleware
from ui.api.problems import install_problem_handlers
from ui.api.routes import build_router
from ui.health import graph_probe, llm_probe, retriever_probe, static_probe, vision_probe
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
    runtime: Any | None = None,
    consultation: ConsultationService | None = None,
    report_service: ReportService | None = None,
    with_ui: bool = True,
) -> FastAPI:
    """Build the app. Given only settings, the runtime and consultation are built from them
    (which needs the LLM and graph servers configured: see ``medkg serve``)."""
    if consultation is None:
        if runtime is None:
            runtime = _runtime_from_settings(settings)
        consultation = _consultation_for(runtime, settings)
    if report_service is None and runtime is not None:
        report_service = _report_service_for(runtime, settings)
    services = AppServices(
        settings=settings,
        consultation=consultation,
        reports=report_service,
        probes=_probes(settings, runtime),
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
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.server.max_request_bytes)

    if with_ui:
        from ui.web import mount_ui

        mount_ui(app, services)
    return app


def _runtime_from_settings(settings: Settings) -> Any:
    from assistant.runtime import Runtime

    return Runtime.from_settings(settings)


def _consultation_for(runtime: Any, settings: Settings) -> ConsultationService:
    from assistant.consultation import Consultation

    consultation: ConsultationService = Consultation(runtime, settings)
    return consultation


def _report_service_for(runtime: Any, settings: Settings) -> ReportService | None:
    from ui.reporting import report_service_from_runtime

    return report_service_from_runtime(runtime, settings)


def _probes(settings: Settings, runtime: Any | None) -> dict[str, HealthProbe]:
    if runtime is None:
        reason = "no runtime in this app (built with an injected consultation)"
        return {name: static_probe("unknown", reason) for name in ("llm", "graph", "retriever", "vision")}
    return {
        "llm": llm_probe(settings),
        "graph": graph_probe(getattr(runtime, "graph", None)),
        "retriever": retriever_probe(
            getattr(runtime, "retriever", None), getattr(runtime, "retriever_disabled_reason", None)
        ),
        "vision": vision_probe(image_encoder_of(runtime), getattr(runtime, "image_disabled_reason", None)),
    }


def image_encoder_of(runtime: Any) -> Any | None:
    """The runtime's image encoder (held by its image analyzer), or None when vision is off."""
    analyzer = getattr(runtime, "image_analyzer", None)
    return getattr(analyzer, "encoder", None)


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

        from assistant.supervisor import free_port

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
