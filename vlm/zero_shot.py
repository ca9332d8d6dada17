"""Zero-shot image findings: CLIP similarity to "finding present" vs "finding absent" prompts.

Calibration (documented in docs/vision.md). For each label we embed an ensemble of positive
prompts ("a chest x-ray showing {name}.") and negative prompts ("a chest x-ray showing no
{name}.") over the label's name and synonyms, average each side and re-normalise (CLIP prompt
ensembling). For an image embedding ``v`` with cosine similarities ``s+`` and ``s-``:

    p(present) = softmax([s+, s-] / T)[0] = sigmoid((s+ - s-) / T)

``T`` is the temperature (default 0.05, i.e. a logit scale of 20; ``None`` uses the model's
own learned ``1 / logit_scale``). Equal similarities give exactly 0.5; a larger margin gives a
larger probability; a larger ``T`` pulls every probability towards 0.5. The pairwise form makes
each label's probability independent of which other labels are in the set (multi-label, unlike
a softmax over all labels). The temperature should be re-fitted on labelled images for a given
set of weights; the default is a conservative guess for BiomedCLIP-like models.

Labels come in as plain data: the agent passes the graph's imaging findings as
``(finding_id, name, synonyms)``; this package never imports the graph.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from vlm.base import ImageEncoder

DATA_DIR = Path(__file__).parent / "data"
LABELS_FILE = DATA_DIR / "cxr_labels.json"
DEFAULT_TEMPERATURE = 0.05
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class FindingLabel:
    """A finding the image can be scored for."""

    id: str
    name: str
    synonyms: tuple[str, ...] = ()
    source: str = "graph"  # "graph" (knowledge graph imaging finding) or "cxr" (shipped label set)

    @property
    def terms(self) -> tuple[str, ...]:
        """Name first, then distinct synonyms (lower-case)."""
        seen: dict[str, None] = {}
        for term in (self.name, *self.synonyms):
            cleaned = " ".join(term.lower().split())
            if cleaned:
                seen.setdefault(cleaned, None)
        return tuple(seen)


class ImageFinding(BaseModel):
    """A scored label: the classifier's output, the consultation's image findings and the report's."""

    label: str
    finding_id: str | None = None
    probability: float
    margin: float = 0.0  # cosine similarity of the positive minus the negative prompt ensemble
    source: str = "graph"


@dataclass(frozen=True)
class PromptTemplates:
    positive: tuple[str, ...]
    negative: tuple[str, ...]


@dataclass(frozen=True)
class LabelSet:
    labels: tuple[FindingLabel, ...]
    templates: PromptTemplates
    description: str = ""


@lru_cache(maxsize=1)
def standard_cxr_labels() -> LabelSet:
    """The shipped chest X-ray label set (CheXpert + ChestX-ray14 observations)."""
    raw = json.loads(LABELS_FILE.read_text(encoding="utf-8"))
    labels = tuple(
        FindingLabel(id=item["id"], name=item["name"], synonyms=tuple(item.get("synonyms", ())), source="cxr")
        for item in raw["labels"]
    )
    templates = PromptTemplates(tuple(raw["positive_templates"]), tuple(raw["negative_templates"]))
    return LabelSet(labels=labels, templates=templates, description=raw.get("description", ""))


def labels_from_findings(
    findings: Iterable[tuple[str, str, Sequence[str]]], *, include_standard: bool = True
) -> tuple[FindingLabel, ...]:
    """Graph imaging findings ``(finding_id, name, synonyms)`` merged with the standard set.

    A graph finding whose name or synonym equals a standard label's name or synonym replaces
    that label (keeping the graph's id, so the agent can use it) and gains its synonyms.
    """
    merged: list[FindingLabel] = []
    for finding_id, name, synonyms in findings:
        if name and name.strip():
            merged.append(FindingLabel(id=str(finding_id), name=name.strip(), synonyms=tuple(synonyms or ())))
    if include_standard:
        for label in standard_cxr_labels().labels:
            match = next((i for i, m in enumerate(merged) if set(m.terms) & set(label.terms)), None)
            if match is None:
                merged.append(label)
            else:
                graph = merged[match]
                extra = tuple(t for t in label.terms if t not in graph.terms)
                merged[match] = FindingLabel(graph.id, graph.name, graph.synonyms + extra, graph.source)
    return tuple(merged)


def calibrate(margins: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(margin / T) == softmax([s+, s-] / T)[0], computed stably."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    z = np.asarray(margins, dtype=np.float64) / temperature
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


@dataclass
class ZeroShotClassifier:
    """Scores images against labels; text embeddings are computed once per classifier."""

    encoder: ImageEncoder
    labels: tuple[FindingLabel, ...] = field(default_factory=lambda: standard_cxr_labels().labels)
    templates: PromptTemplates = field(default_factory=lambda: standard_cxr_labels().templates)
    temperature: float | None = DEFAULT_TEMPERATURE
    _positive: np.ndarray | None = field(default=None, init=False, repr=False)
    _negative: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("a zero-shot classifier needs at least one label")
        if self.temperature is None:
            scale = getattr(self.encoder, "logit_scale", None)
            self.temperature = 1.0 / float(scale) if scale else DEFAULT_TEMPERATURE

    def prompt_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        if self._positive is None or self._negative is None:
            self._positive = self._ensemble(self.templates.positive)
            self._negative = self._ensemble(self.templates.negative)
        return self._positive, self._negative

    def _ensemble(self, templates: Sequence[str]) -> np.ndarray:
        prompts: list[str] = []
        owners: list[int] = []
        for index, label in enumerate(self.labels):
            for term in label.terms[:4]:  # name + a few synonyms is enough for the ensemble
                for template in templates:
                    prompts.append(template.format(term))
                    owners.append(index)
        embedded = self.encoder.encode_texts(prompts)
        out = np.zeros((len(self.labels), embedded.shape[1]), dtype=np.float64)
        np.add.at(out, np.asarray(owners), embedded.astype(np.float64))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def margins(self, image_embeddings: np.ndarray) -> np.ndarray:
        """(n_images, n_labels) positive-minus-negative cosine similarities."""
        positive, negative = self.prompt_embeddings()
        embeddings = np.atleast_2d(np.asarray(image_embeddings, dtype=np.float32))
        return embeddings @ positive.T - embeddings @ negative.T

    def score_embeddings(self, image_embeddings: np.ndarray) -> list[list[ImageFinding]]:
        """Every label scored for every image, most probable first."""
        margins = self.margins(image_embeddings)
        probabilities = calibrate(margins, float(self.temperature or DEFAULT_TEMPERATURE))
        results: list[list[ImageFinding]] = []
        for row_margins, row_probs in zip(margins, probabilities, strict=True):
            row = [
                ImageFinding(
                    label=label.name,
                    finding_id=label.id,
                    probability=round(float(p), 4),
                    margin=round(float(m), 5),
                    source=label.source,
                )
                for label, m, p in zip(self.labels, row_margins, row_probs, strict=True)
            ]
            results.append(sorted(row, key=lambda f: -f.probability))
        return results

    def score(self, image: Image.Image) -> list[ImageFinding]:
        return self.score_embeddings(self.encoder.encode_images([image]))[0]

    def findings(self, image: Image.Image, threshold: float = DEFAULT_THRESHOLD) -> list[ImageFinding]:
        """Labels whose probability reaches ``threshold``, most probable first."""
        return above_threshold(self.score(image), threshold)


def above_threshold(scored: Sequence[ImageFinding], threshold: float) -> list[ImageFinding]:
    return [f for f in scored if f.probability >= threshold]
