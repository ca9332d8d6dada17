"""medkg-cxr scoring: class captions -> probabilities, out-of-scope detection, metrics.

The shipped model directory holds, beside the open_clip files, ``medkg_cxr.json``: the class
captions, the learned logit scale and the scope model. Scoring:

* p(normal), p(bacterial), p(viral): softmax over the image's similarity to each class's
  caption ensemble (the training objective), times the logit scale;
* p(pneumonia): mean of 1 - p(normal) and the normal-vs-pneumonia caption pair;
* p(bacterial | pneumonia) = p(bacterial) / (p(bacterial) + p(viral)).

Out of scope: class-conditional Mahalanobis distance of the image embedding to the training
images (shared, shrunk covariance); above the threshold set on the patient-grouped validation
split the image is "out of scope" and is not scored. The model only knows pediatric frontal
chest X-rays; an adult film, a CT slice, a photo gets no pneumonia probability at all.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vlm.base import ImageEncoder, ImageError
from vlm.zero_shot import FindingLabel, ImageFinding

SPEC_NAME = "medkg_cxr.json"
TASKS = ("normal_vs_pneumonia", "bacterial_vs_viral")
SOURCE = "medkg-cxr"
# What the model assesses; every other chest X-ray label is "not assessed". The ids extend the
# shipped CXR label set (cxr:pneumonia is in it), so a graph finding with the same name wins.
COVERED_LABELS: tuple[FindingLabel, ...] = (
    FindingLabel("cxr:pneumonia", "pneumonia", ("infectious infiltrate", "lung infection"), source="cxr"),
    FindingLabel(
        "cxr:bacterial_pneumonia",
        "bacterial pneumonia",
        ("bacterial pattern", "bacterial infection", "lobar pneumonia"),
        source="cxr",
    ),
    FindingLabel(
        "cxr:viral_pneumonia",
        "viral pneumonia",
        ("viral pattern", "viral infection", "interstitial pneumonia"),
        source="cxr",
    ),
    FindingLabel(
        "cxr:normal",
        "normal chest x-ray",
        ("normal", "no finding", "no findings", "clear lungs", "healthy lungs", "normal lungs"),
        source="cxr",
    ),
)
REACH = (
    "medkg-cxr assesses only pediatric frontal chest X-rays, for normal vs pneumonia and a "
    "bacterial vs viral pattern; every other finding (effusion, cardiomegaly, nodules, lines "
    "and tubes, fractures, ...) is not assessed"
)


class OutOfScopeImageError(ImageError):
    """The image is unlike the model's training images; it is not scored."""


@dataclass(frozen=True)
class CxrScore:
    """One image's scores; the probabilities are None when the image is out of scope."""

    in_scope: bool
    scope_distance: float
    scope_threshold: float
    p_pneumonia: float | None
    p_bacterial_given_pneumonia: float | None
    p_normal: float | None
    p_bacterial: float | None
    p_viral: float | None


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class CxrHead:
    """Caption-ensemble text features for normal / bacterial / viral / pneumonia."""

    text_features: dict[str, np.ndarray]

    @classmethod
    def from_model(
        cls, model: Any, tokenize: Callable[[list[str]], Any], captions: Mapping[str, Sequence[str]]
    ) -> CxrHead:
        import torch

        features = {}
        with torch.inference_mode():
            for name, texts in captions.items():
                emb = model.encode_text(tokenize(list(texts)), normalize=True).float().numpy()
                features[name] = _normalise(emb.mean(axis=0))
        return cls(features)

    @classmethod
    def from_encoder(cls, encoder: ImageEncoder, captions: Mapping[str, Sequence[str]]) -> CxrHead:
        return cls(
            {name: _normalise(encoder.encode_texts(list(t)).mean(axis=0)) for name, t in captions.items()}
        )

    def score_embeddings(self, embeddings: np.ndarray, *, logit_scale: float) -> dict[str, np.ndarray]:
        f = self.text_features
        three = _softmax(logit_scale * embeddings @ np.stack([f["normal"], f["bacterial"], f["viral"]]).T)
        two = _softmax(logit_scale * embeddings @ np.stack([f["normal"], f["pneumonia"]]).T)
        p_pneu = 0.5 * ((1 - three[:, 0]) + two[:, 1])
        bact = three[:, 1] / np.clip(three[:, 1] + three[:, 2], 1e-12, None)
        return {
            "p_normal": three[:, 0],
            "p_bacterial": three[:, 1],
            "p_viral": three[:, 2],
            "p_pneumonia": p_pneu,
            "p_bacterial_given_pneumonia": bact,
        }


@dataclass
class ScopeModel:
    """Class-conditional Mahalanobis distance to the training embeddings, with a threshold."""

    means: np.ndarray  # (classes, d)
    precision: np.ndarray  # (d, d)
    threshold: float

    @classmethod
    def fit(
        cls,
        train: np.ndarray,
        labels: Sequence[str],
        val: np.ndarray,
        *,
        max_flag_rate: float = 0.03,
        shrinkage: float = 0.1,
    ) -> ScopeModel:
        names = sorted(set(labels))
        label_arr = np.array(labels)
        means = np.stack([train[label_arr == n].mean(axis=0) for n in names])
        centred = train - means[np.searchsorted(names, label_arr)]
        cov = centred.T @ centred / max(1, len(train) - 1)
        # Shrink towards a scaled identity: a few thousand samples in 128 dims is a noisy estimate.
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        model = cls(means=means, precision=np.linalg.inv(cov), threshold=float("inf"))
        reference = val if len(val) else train
        model.threshold = float(np.quantile(model.distances(reference), 1 - max_flag_rate))
        return model

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        diffs = embeddings[:, None, :] - self.means[None, :, :]  # (n, c, d)
        d2 = np.einsum("ncd,de,nce->nc", diffs, self.precision, diffs)
        return np.sqrt(np.clip(d2.min(axis=1), 0, None))

    def flags(self, embeddings: np.ndarray) -> np.ndarray:
        return self.distances(embeddings) > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "class-conditional Mahalanobis, shared shrunk covariance",
            "threshold": self.threshold,
            "means": np.round(self.means, 6).tolist(),
            "precision": np.round(self.precision, 5).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScopeModel:
        return cls(
            means=np.asarray(data["means"], dtype=np.float64),
            precision=np.asarray(data["precision"], dtype=np.float64),
            threshold=float(data["threshold"]),
        )


def score_findings(score: CxrScore) -> list[ImageFinding]:
    """The covered labels as ImageFindings (probabilities), or [] when out of scope."""
    if not score.in_scope or score.p_pneumonia is None or score.p_bacterial_given_pneumonia is None:
        return []
    p, b = score.p_pneumonia, score.p_bacterial_given_pneumonia
    values = {
        "cxr:pneumonia": p,
        "cxr:bacterial_pneumonia": p * b,  # joint: pneumonia AND bacterial pattern
        "cxr:viral_pneumonia": p * (1 - b),
        "cxr:normal": 1 - p,
    }
    return [
        ImageFinding(
            label=label.name, finding_id=label.id, probability=float(values[label.id]), source=SOURCE
        )
        for label in COVERED_LABELS
    ]


def out_of_scope_message(score: CxrScore) -> str:
    return (
        "the image does not look like a pediatric frontal chest X-ray, the only kind of image "
        f"medkg-cxr was trained on (distance {score.scope_distance:.1f} > {score.scope_threshold:.1f}); "
        "it was not scored"
    )


class CxrScorer:
    """Scores images with the medkg-cxr head over any encoder that carries its spec."""

    def __init__(self, encoder: ImageEncoder, spec: Mapping[str, Any]) -> None:
        self.encoder = encoder
        self.spec = spec
        self.logit_scale = float(spec["logit_scale"])
        self.head = CxrHead.from_encoder(encoder, spec["captions"])
        self.scope = ScopeModel.from_dict(spec["scope"])

    @classmethod
    def for_encoder(cls, encoder: ImageEncoder) -> CxrScorer | None:
        """The scorer when ``encoder`` was loaded from a directory with ``medkg_cxr.json``."""
        source = getattr(encoder, "source_dir", None)
        spec_path = Path(source) / SPEC_NAME if source else None
        if spec_path is None or not spec_path.is_file():
            return None
        return cls(encoder, json.loads(spec_path.read_text(encoding="utf-8")))

    def score_embeddings(self, embeddings: np.ndarray) -> list[CxrScore]:
        dist = self.scope.distances(embeddings.astype(np.float64))
        probs = self.head.score_embeddings(embeddings, logit_scale=self.logit_scale)
        out = []
        for i, d in enumerate(dist):
            ok = bool(d <= self.scope.threshold)

            def value(key: str, i: int = i, ok: bool = ok) -> float | None:
                return float(probs[key][i]) if ok else None

            out.append(
                CxrScore(
                    in_scope=ok,
                    scope_distance=float(d),
                    scope_threshold=self.scope.threshold,
                    p_pneumonia=value("p_pneumonia"),
                    p_bacterial_given_pneumonia=value("p_bacterial_given_pneumonia"),
                    p_normal=value("p_normal"),
                    p_bacterial=value("p_bacterial"),
                    p_viral=value("p_viral"),
                )
            )
        return out

    def score(self, images: Sequence[Image.Image]) -> list[CxrScore]:
        return self.score_embeddings(self.encoder.encode_images(list(images)))

    def raw_probabilities(self, embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities for every image, ignoring scope (evaluation only)."""
        return self.head.score_embeddings(embeddings, logit_scale=self.logit_scale)


# --- metrics ---------------------------------------------------------------------------------


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged); nan with one class only."""
    labels = np.asarray(labels, dtype=bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = np.asarray(scores)[order]
    i = 0
    while i < len(sorted_scores):
        j = i
        while j + 1 < len(sorted_scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def bootstrap_auroc(
    labels: np.ndarray, scores: np.ndarray, *, rounds: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """(AUROC, 2.5th, 97.5th percentile) over image-level bootstrap resamples."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    values = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        value = auroc(labels[idx], scores[idx])
        if not np.isnan(value):
            values.append(value)
    point = auroc(labels, scores)
    if not values:
        return point, float("nan"), float("nan")
    return point, float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Equal-width-bin ECE of P(label) (the weighted mean |accuracy - confidence| gap)."""
    labels = np.asarray(labels, dtype=float)
    probs = np.asarray(probs, dtype=float)
    if len(labels) == 0:
        return float("nan")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(labels[mask].mean() - probs[mask].mean())
    return float(total)


def evaluate_scores(
    probs: Mapping[str, np.ndarray], labels: Sequence[str], *, seed: int = 0
) -> dict[str, Any]:
    """AUROC with 95% bootstrap intervals and ECE for both tasks."""
    label_arr = np.array(labels)
    pneu = label_arr != "normal"
    result: dict[str, Any] = {"images": len(label_arr)}
    point, low, high = bootstrap_auroc(pneu, np.asarray(probs["p_pneumonia"]), seed=seed)
    result["normal_vs_pneumonia"] = {
        "auroc": point,
        "ci95": [low, high],
        "ece": expected_calibration_error(pneu, probs["p_pneumonia"]),
        "n_normal": int((~pneu).sum()),
        "n_pneumonia": int(pneu.sum()),
    }
    sub = np.isin(label_arr, ["bacterial", "viral"])
    bact = label_arr[sub] == "bacterial"
    scores = np.asarray(probs["p_bacterial_given_pneumonia"])[sub]
    point, low, high = bootstrap_auroc(bact, scores, seed=seed)
    result["bacterial_vs_viral"] = {
        "auroc": point,
        "ci95": [low, high],
        "ece": expected_calibration_error(bact, scores),
        "n_bacterial": int(bact.sum()),
        "n_viral": int((~bact).sum()),
    }
    return result


_SCORERS: weakref.WeakKeyDictionary[Any, CxrScorer | None] = weakref.WeakKeyDictionary()
_SCORERS_LOCK = threading.Lock()


def cxr_scorer_for(encoder: ImageEncoder) -> CxrScorer | None:
    """The encoder's medkg-cxr scorer (built once per encoder: the caption embeddings), or None."""
    with _SCORERS_LOCK:
        try:
            if encoder in _SCORERS:
                return _SCORERS[encoder]
        except TypeError:  # not weak-referenceable: build every time
            return CxrScorer.for_encoder(encoder)
        scorer = CxrScorer.for_encoder(encoder)
        _SCORERS[encoder] = scorer
        return scorer
