"""Report drafting for the API and the UI, over the vision engineer's ``assistant.reports``."""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import BaseModel

from assistant.app import App
from assistant.settings import Settings
from ui.services import ReportService, ReportUnavailableError

log = logging.getLogger(__name__)


class DraftReportService:
    """Drafts with the runtime's encoder and chat model; the report bank is embedded on first use."""

    def __init__(self, encoder: Any, chat_model: Any, settings: Settings, *, report_bank: Any = None) -> None:
        self.encoder = encoder
        self.chat_model = chat_model
        self.settings = settings
        self._bank: Any | None = report_bank
        self._bank_lock = threading.Lock()

    @property
    def reach(self) -> str:
        """What the image model can and cannot see, in words for the report tab."""
        from vlm.cxr import REACH, cxr_scorer_for

        if cxr_scorer_for(self.encoder) is not None:
            return REACH + "; other kinds of images (adult films, CT, photos) are refused as out of scope."
        return (
            "a zero-shot open_clip model: chest X-ray findings are scored by their similarity to text "
            "labels, and its accuracy on your images has not been measured here."
        )

    def report_bank(self) -> Any:
        with self._bank_lock:
            if self._bank is None:
                from vlm import ReportBank

                self._bank = ReportBank.build_or_load(self.encoder, self.settings.data_dir / "cache")
                log.info("report bank ready: %d reports", len(self._bank))
            return self._bank

    def draft(self, image: bytes, indication: str) -> BaseModel:
        from assistant.reports import draft_report

        draft: BaseModel = draft_report(
            image,
            indication,
            encoder=self.encoder,
            chat_model=self.chat_model,
            report_bank=self.report_bank(),
            max_bytes=self.settings.vision.max_upload_bytes,
            max_pixels=self.settings.vision.max_pixels,
        )
        return draft

    def to_fhir(self, draft: BaseModel) -> dict[str, Any]:
        from assistant.reports import ReportDraft, to_fhir

        if not isinstance(draft, ReportDraft):
            raise TypeError(f"expected a ReportDraft, got {type(draft).__name__}")
        fhir: dict[str, Any] = to_fhir(draft)
        return fhir

    def revise(self, draft: dict[str, Any], *, findings: str, impression: str) -> BaseModel:
        from assistant.reports import ReportDraft

        revised: BaseModel = ReportDraft.model_validate(
            {**draft, "findings": findings, "impression": impression}
        )
        return revised


class DisabledReportService:
    """Every draft fails with the reason vision is off (so the API answers 503 with it)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.reach = reason

    def draft(self, image: bytes, indication: str) -> BaseModel:
        raise ReportUnavailableError(self.reason)

    def to_fhir(self, draft: BaseModel) -> dict[str, Any]:
        raise ReportUnavailableError(self.reason)

    def revise(self, draft: dict[str, Any], *, findings: str, impression: str) -> BaseModel:
        raise ReportUnavailableError(self.reason)


def report_service_for(assembled: App) -> ReportService:
    encoder = getattr(assembled.image_analyzer, "encoder", None)
    if encoder is None or assembled.chat_model is None:
        reason = assembled.disabled.get("vision") or "no image model is configured"
        return DisabledReportService(f"Report drafting is disabled: {reason}")
    return DraftReportService(encoder, assembled.chat_model, assembled.settings)
