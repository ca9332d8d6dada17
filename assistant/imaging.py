"""Imaging findings for a consultation: the analyzer protocol and the configured encoder behind it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from assistant.settings import Settings
from kg.models import FindingConcept
from vlm.zero_shot import ImageFinding


class ImageAnalyzer(Protocol):
    def analyze(self, image: bytes, findings: Sequence[FindingConcept]) -> list[ImageFinding]:
        """Imaging findings the image shows, with probabilities."""


class EncoderImageAnalyzer:
    """Zero-shot imaging findings (vlm.ZeroShotClassifier) over the graph's imaging findings."""

    def __init__(self, encoder: Any, *, threshold: float = 0.5, temperature: float = 0.05) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.temperature = temperature
        self._classifier: Any = None
        self._graph_ids: set[str] = set()
        self._lock = threading.Lock()

    def _classifier_for(self, findings: Sequence[FindingConcept]) -> Any:
        from vlm import ZeroShotClassifier, labels_from_findings

        with self._lock:
            if self._classifier is None:
                imaging = [f for f in findings if f.kind == "imaging"]
                self._graph_ids = {f.id for f in imaging}
                labels = labels_from_findings((f.id, f.name, f.synonyms) for f in imaging)
                self._classifier = ZeroShotClassifier(
                    encoder=self.encoder, labels=labels, temperature=self.temperature
                )
            return self._classifier

    def analyze(self, image: bytes, findings: Sequence[FindingConcept]) -> list[ImageFinding]:
        from vlm import load_image

        loaded = load_image(image)
        classifier = self._classifier_for(findings)
        scored = classifier.score_embeddings(self.encoder.encode_images([loaded.image]))[0]
        return [
            # Only graph findings enter the evidence; the standard CXR labels are shown only.
            f if f.finding_id in self._graph_ids else f.model_copy(update={"finding_id": None})
            for f in scored
            if f.probability >= self.threshold
        ]


def load_image_analyzer(settings: Settings) -> tuple[ImageAnalyzer | None, str | None]:
    if not settings.vision.model:
        return None, "no image model is configured (set MEDKG_VISION__MODEL to an open_clip checkpoint)"
    try:
        from vlm import try_create_encoder

        encoder, reason = try_create_encoder(settings.vision.model, architecture=settings.vision.architecture)
    except Exception as exc:  # a broken vision install must not stop consultations
        return None, f"image analysis is disabled: {exc}"
    if encoder is None:
        return None, reason
    return (
        EncoderImageAnalyzer(
            encoder, threshold=settings.vision.finding_threshold, temperature=settings.vision.temperature
        ),
        None,
    )
