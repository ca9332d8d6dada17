"""What the interfaces need from the layers below, as protocols (the real ones live in assistant/).

The API and the Gradio app are written against these so that they can be tested with fakes
and so that a missing component (no vision weights, say) degrades one endpoint, not the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from assistant.contracts import ConsultationState, TurnResult
from assistant.settings import Settings


class ReportUnavailableError(RuntimeError):
    """Report drafting cannot run (no image encoder configured, say); the message says why."""


@runtime_checkable
class ConsultationService(Protocol):
    """The consultation facade (``assistant.consultation.Consultation``) as the UI uses it."""

    def start(
        self,
        message: str | None = None,
        *,
        age: int | None = None,
        sex: Literal["M", "F"] | None = None,
        image: bytes | None = None,
    ) -> TurnResult: ...

    def send(self, session_id: str, message: str, *, image: bytes | None = None) -> TurnResult: ...

    def answer(self, session_id: str, answer: str) -> TurnResult: ...

    def state(self, session_id: str) -> ConsultationState: ...

    def export(self, session_id: str) -> dict[str, Any]: ...


@runtime_checkable
class ReportService(Protocol):
    """Drafts a radiology report from an image and a clinical indication."""

    def draft(self, image: bytes, indication: str) -> BaseModel:
        """Raise ``vlm.base.ImageError`` for unreadable images, ReportUnavailableError when disabled."""

    def to_fhir(self, draft: BaseModel) -> dict[str, Any]: ...

    def revise(self, draft: dict[str, Any], *, findings: str, impression: str) -> BaseModel:
        """The draft (as its JSON) with the clinician's edited sections."""


ComponentStatus = Literal["ok", "disabled", "error", "unknown"]


class ComponentHealth(BaseModel):
    status: ComponentStatus
    reason: str = ""
    detail: dict[str, Any] = {}


HealthProbe = Callable[[], ComponentHealth]


@dataclass
class AppServices:
    """Everything the routes and the Gradio callbacks reach, built once per app."""

    settings: Settings
    consultation: ConsultationService | None
    reports: ReportService | None
    probes: dict[str, HealthProbe] = field(default_factory=dict)
