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


SCOPE_FILE = "medkg_scope.npz"
TRUNK_LAYERS = ("layer1", "layer2", "layer3")


def _gaussian(x: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision of ``x``, covariance shrunk towards a scaled identity."""
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / max(1, len(x) - 1)
    # A few thousand samples in up to 512 dims is a noisy estimate: shrink it.
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return mean, np.linalg.inv(cov)


@dataclass
class ScopeModel:
    """Mahalanobis distances of several feature blocks to the training images, combined.

    Blocks: the pooled activations (mean and std over space) of the first image-tower stages,
    which see texture and contrast, and the final embedding, which sees content. Each block's
    distance is rescaled so its validation median is 0 and its 98th percentile 1; the score is
    the maximum over blocks, and the threshold is a high quantile of the validation scores.
    Early-stage statistics catch photos, noise and other modalities; the embedding catches
    films whose content differs.
    """

    blocks: dict[str, dict[str, np.ndarray]]  # name -> mean, precision, scale (median, q98)
    threshold: float

    @classmethod
    def fit(
        cls,
        train: Mapping[str, np.ndarray],
        val: Mapping[str, np.ndarray],
        *,
        max_flag_rate: float = 0.03,
        shrinkage: float = 0.1,
    ) -> ScopeModel:
        blocks: dict[str, dict[str, np.ndarray]] = {}
        for name, x in train.items():
            mean, precision = _gaussian(x.astype(np.float64), shrinkage)
            blocks[name] = {"mean": mean, "precision": precision, "scale": np.array([0.0, 1.0])}
        model = cls(blocks=blocks, threshold=float("inf"))
        reference = val if len(next(iter(val.values()))) else train
        for name in blocks:
            d = model._distance(name, reference[name])
            blocks[name]["scale"] = np.array([np.median(d), np.quantile(d, 0.98)])
        model.threshold = float(np.quantile(model.scores(reference), 1 - max_flag_rate))
        return model

    def _distance(self, name: str, x: np.ndarray) -> np.ndarray:
        block = self.blocks[name]
        diff = x.astype(np.float64) - block["mean"]
        return np.sqrt(np.clip(np.einsum("nd,de,ne->n", diff, block["precision"], diff), 0, None))

    def scores(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        per_block = []
        for name, block in self.blocks.items():
            median, q98 = block["scale"]
            per_block.append((self._distance(name, features[name]) - median) / max(q98 - median, 1e-9))
        return np.max(np.stack(per_block), axis=0)

    def flags(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.scores(features) > self.threshold

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            f"{name}/{key}": value.astype(np.float32)
            for name, block in self.blocks.items()
            for key, value in block.items()
        }
        arrays["threshold"] = np.array(self.threshold)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> ScopeModel:
        with np.load(path) as data:
            blocks: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                if "/" in key:
                    name, field = key.split("/", 1)
                    blocks.setdefault(name, {})[field] = data[key].astype(np.float64)
            return cls(blocks=blocks, threshold=float(data["threshold"]))


def image_features(model: Any, pixels: Any) -> dict[str, np.ndarray]:
    """The final embedding and, for a ResNet image tower, pooled early-stage activations.

    Runs the tower stage by stage (no hooks: safe when other threads use the same model); the
    embedding equals ``model.encode_image(pixels, normalize=True)``.
    """
    import torch
    import torch.nn.functional as F

    visual = model.visual
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        if all(hasattr(visual, n) for n in (*TRUNK_LAYERS, "layer4", "stem", "attnpool")):
            x = visual.stem(pixels)
            for name in (*TRUNK_LAYERS, "layer4"):
                x = getattr(visual, name)(x)
                if name in TRUNK_LAYERS:
                    flat = x.flatten(2)
                    out[name] = torch.cat([flat.mean(2), flat.std(2)], 1).float().numpy()
            embedding = F.normalize(visual.attnpool(x), dim=-1)
        else:
            embedding = model.encode_image(pixels, normalize=True)
    out["embedding"] = embedding.float().numpy()
    return out


def encoder_features(
    encoder: Any, images: Sequence[Image.Image], batch_size: int = 64
) -> dict[str, np.ndarray]:
    """``image_features`` through the encoder's own preprocessing (the production path)."""
    import torch

    chunks: list[dict[str, np.ndarray]] = []
    for start in range(0, len(images), batch_size):
        batch = [encoder.preprocess(image.convert("RGB")) for image in images[start : start + batch_size]]
        chunks.append(image_features(encoder.model, torch.stack(batch).to(encoder.device)))
    if not chunks:
        return {}
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


HEADS_FILE = "medkg_heads.npz"
SUBTYPE_FEATURES = ("embedding", *TRUNK_LAYERS)


@dataclass
class SubtypeHead:
    """Supervised bacterial-vs-viral head: L2 logistic regression on frozen image features.

    Why: the caption head separates normal from pneumonia well but the bacterial/viral pattern
    poorly; a linear probe on the pooled ResNet stages + embedding does better (model card).
    """

    mean: np.ndarray
    std: np.ndarray
    coef: np.ndarray
    bias: float

    @staticmethod
    def stack(features: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([features[name] for name in SUBTYPE_FEATURES], axis=1).astype(np.float64)

    @classmethod
    def fit(
        cls, features: Mapping[str, np.ndarray], bacterial: np.ndarray, *, l2: float = 0.0133
    ) -> SubtypeHead:
        import torch

        x = cls.stack(features)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
        xt = torch.from_numpy((x - mean) / std)
        y = torch.from_numpy(np.asarray(bacterial, dtype=np.float64))
        w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

        def closure() -> Any:
            optimizer.zero_grad()
            logits = xt @ w[:-1] + w[-1]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * (w[:-1] ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        weights = w.detach().numpy()
        return cls(mean=mean, std=std, coef=weights[:-1], bias=float(weights[-1]))

    def predict(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        z = (self.stack(features) - self.mean) / self.std @ self.coef + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, mean=self.mean, std=self.std, coef=self.coef, bias=np.array(self.bias))

    @classmethod
    def load(cls, path: Path) -> SubtypeHead:
        with np.load(path) as data:
            return cls(data["mean"], data["std"], data["coef"], float(data["bias"]))


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
        f"medkg-cxr was trained on (out-of-scope score {score.scope_distance:.1f} > "
        f"{score.scope_threshold:.1f}); "
        "it was not scored"
    )


class CxrScorer:
    """Scores images with the medkg-cxr head over any encoder that carries its spec."""

    def __init__(
        self,
        encoder: ImageEncoder,
        spec: Mapping[str, Any],
        scope: ScopeModel,
        subtype: SubtypeHead | None = None,
    ) -> None:
        self.encoder = encoder
        self.spec = spec
        self.logit_scale = float(spec["logit_scale"])
        self.head = CxrHead.from_encoder(encoder, spec["captions"])
        self.scope = scope
        self.subtype = subtype

    @classmethod
    def for_encoder(cls, encoder: ImageEncoder) -> CxrScorer | None:
        """The scorer when ``encoder`` was loaded from a directory with ``medkg_cxr.json``."""
        source = getattr(encoder, "source_dir", None)
        if (
            source is None
            or not (Path(source) / SPEC_NAME).is_file()
            or not (Path(source) / SCOPE_FILE).is_file()
        ):
            return None
        spec = json.loads((Path(source) / SPEC_NAME).read_text(encoding="utf-8"))
        heads = Path(source) / HEADS_FILE
        subtype = SubtypeHead.load(heads) if heads.is_file() else None
        return cls(encoder, spec, ScopeModel.load(Path(source) / SCOPE_FILE), subtype)

    def features(self, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
        return encoder_features(self.encoder, images)

    def score_features(self, features: Mapping[str, np.ndarray]) -> list[CxrScore]:
        dist = self.scope.scores(features)
        probs = self.raw_probabilities(features)
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
        return self.score_features(self.features(images))

    def raw_probabilities(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Probabilities for every image, ignoring scope."""
        probs = self.head.score_embeddings(features["embedding"], logit_scale=self.logit_scale)
        if self.subtype is not None:
            bacterial = self.subtype.predict(features)
            probs["p_bacterial_given_pneumonia"] = bacterial
            probs["p_bacterial"] = probs["p_pneumonia"] * bacterial
            probs["p_viral"] = probs["p_pneumonia"] * (1 - bacterial)
            probs["p_normal"] = 1 - probs["p_pneumonia"]
        return probs


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
