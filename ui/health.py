"""Health probes: one per component (llm, graph, retriever, vision), each with a reason.

The embedded graph and LLM are supervised (assistant/processes/supervisor.py): while one is
being restarted its component says so (``detail.supervisor``) and the overall status is
``degraded`` (HTTP 200), not ``error``; only a server that is down and not coming back (no
supervisor, or its restart budget spent) makes ``/healthz`` answer 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from assistant.settings import Settings
from ui.services import ComponentHealth, HealthProbe

log = logging.getLogger(__name__)

# What the supervisor reports for one embedded server (None: not started by this app).
SupervisorStatus = Callable[[], Any]
RECOVERING = ("starting", "restarting")

PROBE_TIMEOUT_S = 3.0
# Without these the assistant cannot hold a consultation; the others only narrow features.
REQUIRED = ("llm", "graph")


def supervisor_status(assembled: Any, key: str) -> SupervisorStatus:
    """Reads ``assembled.services`` (the App's ServiceGroup) at each probe."""

    def status() -> Any:
        group = getattr(assembled, "services", None)
        return group.status().get(key) if group is not None else None

    return status


def supervised(probe: HealthProbe, status: SupervisorStatus | None) -> HealthProbe:
    """The probe, told apart by what the supervisor knows: restarting, failed for good, or up."""
    if status is None:
        return probe

    def checked() -> ComponentHealth:
        current = status()
        if current is None:
            return probe()
        if current.state != "ok":
            return _described(current)
        result = probe()
        if result.status == "error":
            later = status()  # it may have died while we probed
            if later is not None and later.state != "ok":
                return _described(later)
            if current.restarts:  # just restarted: a pooled connection to the dead server
                result = probe()
        return result.model_copy(update={"detail": {**result.detail, "supervisor": current.as_dict()}})

    return checked


def _described(current: Any) -> ComponentHealth:
    """A supervised server that is not up, as its supervisor tells it."""
    detail = {"supervisor": current.as_dict()}
    if current.state == "failed":
        reason = f"embedded server failed and is not restarted again: {current.last_error}"
    else:
        code = current.last_exit_code
        why = f" after exit code {code}" if code is not None else ""
        reason = f"embedded server {current.state}{why} (restarts so far: {current.restarts})"
    return ComponentHealth(status="error", reason=reason, detail=detail)


def llm_probe(settings: Settings, status: SupervisorStatus | None = None) -> HealthProbe:
    def probe() -> ComponentHealth:
        base = settings.llm.base_url
        if not base:
            return ComponentHealth(status="error", reason="no LLM server configured (llm.base_url)")
        headers = {"Authorization": f"Bearer {settings.llm.api_key.get_secret_value()}"}
        try:
            response = httpx.get(base.rstrip("/") + "/models", headers=headers, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return ComponentHealth(status="error", reason=f"LLM server unreachable: {type(exc).__name__}")
        if response.status_code != 200:
            return ComponentHealth(status="error", reason=f"LLM server answered HTTP {response.status_code}")
        return ComponentHealth(status="ok", reason="LLM server answers", detail={"model": settings.llm.model})

    return supervised(probe, status)


def graph_probe(store: Any, status: SupervisorStatus | None = None) -> HealthProbe:
    def probe() -> ComponentHealth:
        if store is None:
            return ComponentHealth(status="error", reason="no graph store")
        try:
            store.ping()
        except Exception as exc:  # GraphError or a driver error: report, never raise
            return ComponentHealth(status="error", reason=f"graph unreachable: {exc}")
        return ComponentHealth(status="ok", reason="graph server answers")

    return supervised(probe, status)


def retriever_probe(
    retriever: Callable[[], Any],
    disabled_reason: Callable[[], str | None],
    progress: Callable[[], BaseModel | None] = lambda: None,
) -> HealthProbe:
    """``progress``: the index build's latest snapshot (done / total / ETA), shown while building."""

    def probe() -> ComponentHealth:
        current = retriever()
        if current is None:
            building = progress()
            return ComponentHealth(
                status="disabled",
                reason=disabled_reason() or "no retrieval index loaded; answers cite no passages",
                detail={"build": building.model_dump(mode="json")} if building is not None else {},
            )
        return ComponentHealth(status="ok", reason=f"{type(current).__name__} loaded")

    return probe


def vision_probe(encoder: Any, disabled_reason: str | None) -> HealthProbe:
    def probe() -> ComponentHealth:
        if encoder is None:
            return ComponentHealth(
                status="disabled", reason=disabled_reason or "no image encoder configured (vision.model)"
            )
        return ComponentHealth(
            status="ok",
            reason="image encoder loaded",
            detail={"name": getattr(encoder, "name", type(encoder).__name__)},
        )

    return probe


def static_probe(status: str, reason: str) -> HealthProbe:
    health = ComponentHealth.model_validate({"status": status, "reason": reason})
    return lambda: health


async def run_probes(probes: Mapping[str, HealthProbe]) -> dict[str, ComponentHealth]:
    async def one(name: str, probe: HealthProbe) -> tuple[str, ComponentHealth]:
        try:
            result = await asyncio.wait_for(asyncio.to_thread(probe), timeout=PROBE_TIMEOUT_S + 1)
        except TimeoutError:
            result = ComponentHealth(
                status="error", reason=f"health check timed out after {PROBE_TIMEOUT_S}s"
            )
        except Exception as exc:
            log.warning("health probe %s failed: %s", name, type(exc).__name__)
            result = ComponentHealth(status="error", reason=f"health check failed: {type(exc).__name__}")
        return name, result

    pairs = await asyncio.gather(*(one(name, probe) for name, probe in probes.items()))
    return dict(pairs)


def recovering(health: ComponentHealth) -> bool:
    supervisor = health.detail.get("supervisor")
    return isinstance(supervisor, dict) and supervisor.get("state") in RECOVERING


def overall_status(components: Mapping[str, ComponentHealth]) -> Literal["ok", "degraded", "error"]:
    required = [components.get(name, ComponentHealth(status="unknown")) for name in REQUIRED]
    # A required server being restarted is an outage that ends by itself: degraded, not error.
    if any(c.status == "error" and not recovering(c) for c in required):
        return "error"
    if any(c.status in ("error", "unknown") for c in components.values()):
        return "degraded"
    return "ok"
