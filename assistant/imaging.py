"""Imaging findings for a consultation: the analyzer protocol and the configured encoder behind it.

Two analyzers behind one protocol. The default model, medkg-cxr, is a trained classifier with
a known reach: it scores pneumonia (and its bacterial/viral pattern) on pediatric frontal chest
X-rays and refuses images outside that scope (``vlm.cxr.OutOfScopeImageError``, which the
consultation turns into a note). Any other open_clip model (BiomedCLIP, ...) scores the graph's
imaging findings zero-shot.
"""

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


class CxrImageAnalyzer:
    """medkg-cxr: pneumonia, bacterial/viral pattern, normal; mapped onto graph findings by name."""

    def __init__(self, encoder: Any, scorer: Any, *, threshold: float = 0.5) -> None:
        self.encoder = encoder
        self.scorer = scorer
        self.threshold = threshold

    def analyze(self, image: bytes, findings: Sequence[FindingConcept]) -> list[ImageFinding]:
        from vlm import load_image
        from vlm.cxr import COVERED_LABELS, OutOfScopeImageError, out_of_scope_message, score_findings

        score = self.scorer.score([load_image(image).image])[0]
        if not score.in_scope:
            raise OutOfScopeImageError(out_of_scope_message(score))
        graph_ids = _graph_ids_by_term(findings)
        out = []
        for found in score_findings(score):
            if found.probability < self.threshold or found.finding_id == "cxr:normal":
                continue  # "normal" is the absence of the others, not a finding for the graph
            label = next(c for c in COVERED_LABELS if c.id == found.finding_id)
            graph_id = next((graph_ids[t] for t in label.terms if t in graph_ids), None)
            # Only graph findings enter the evidence; the others are shown with no id.
            out.append(found.model_copy(update={"finding_id": graph_id}))
        return out


def _graph_ids_by_term(findings: Sequence[FindingConcept]) -> dict[str, str]:
    """Lower-case name/synonym -> id of the graph's imaging findings."""
    ids: dict[str, str] = {}
    for f in findings:
        if f.kind == "imaging":
            for term in (f.name, *f.synonyms):
                ids.setdefault(" ".join(term.lower().split()), f.id)
    return ids


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
    from vlm.cxr import cxr_scorer_for

    scorer = cxr_scorer_for(encoder)
    if scorer is not None:
        return CxrImageAnalyzer(encoder, scorer, threshold=settings.vision.finding_threshold), None
    return (
        EncoderImageAnalyzer(
            encoder, threshold=settings.vision.finding_threshold, temperature=settings.vision.temperature
        ),
        None,
    )
