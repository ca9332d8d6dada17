"""Measure an encoder on labelled chest X-ray folders and on out-of-scope images.

Used by ``medkg vision eval`` and ``bench/vision.py``. Images go through the production path
(``load_image`` -> the encoder's own preprocessing), not the training cache. With medkg-cxr the
trained head and the scope model score them; any other open_clip model is scored zero-shot with
the same caption ensembles at its own logit scale (no scope model: the out-of-scope rate is None).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vlm.base import ImageEncoder, ImageError
from vlm.cxr import CxrHead, cxr_scorer_for, evaluate_scores
from vlm.cxr_data import Sample, scan
from vlm.image_io import load_image


def load_images(paths: Sequence[Path]) -> tuple[list[Image.Image], list[int]]:
    """Decoded images and the indices of the paths that could be read."""
    images, kept = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path.read_bytes(), filename=path.name).image)
            kept.append(i)
        except (ImageError, OSError):
            continue
    return images, kept


def score_images(encoder: ImageEncoder, images: Sequence[Image.Image]) -> dict[str, np.ndarray]:
    """Probabilities for every image (scope ignored) and, for medkg-cxr, the scope flags."""
    scorer = cxr_scorer_for(encoder)
    if scorer is not None:
        features = scorer.features(list(images))
        probs = scorer.raw_probabilities(features)
        probs["out_of_scope"] = scorer.scope.flags(features)
        return probs
    embeddings = encoder.encode_images(list(images))
    from vlm.training import CAPTIONS

    scale = float(getattr(encoder, "logit_scale", 100.0))
    return CxrHead.from_encoder(encoder, CAPTIONS).score_embeddings(embeddings, logit_scale=scale)


def evaluate_samples(encoder: ImageEncoder, samples: Sequence[Sample], *, seed: int = 0) -> dict[str, Any]:
    """AUROC (bootstrap 95% CI), ECE, out-of-scope rate, seconds per image, peak Python memory."""
    tracemalloc.start()
    started = time.perf_counter()
    images, kept = load_images([s.path for s in samples])
    probs = score_images(encoder, images)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    labels = [samples[i].label for i in kept]
    result = evaluate_scores(probs, labels, seed=seed)
    flags = probs.get("out_of_scope")
    result.update(
        {
            "model": encoder.name,
            "unreadable": len(samples) - len(kept),
            "out_of_scope_rate": float(np.mean(flags)) if flags is not None and len(flags) else None,
            "seconds_per_image": seconds / max(1, len(kept)),
            "peak_python_mib": peak / 2**20,
        }
    )
    if flags is not None and len(flags) and not flags.all():
        # The product never scores flagged images: the numbers a user actually sees.
        keep = ~np.asarray(flags)
        in_scope = {k: np.asarray(v)[keep] for k, v in probs.items() if k != "out_of_scope"}
        result["in_scope_only"] = evaluate_scores(
            in_scope, [lbl for lbl, k in zip(labels, keep, strict=True) if k], seed=seed
        )
    return result


def evaluate_folder(encoder: ImageEncoder, data: Path, *, seed: int = 0) -> dict[str, Any]:
    samples = scan(data)
    if not samples:
        raise ValueError(f"no labelled images under {data} (expected NORMAL/ and PNEUMONIA/ sub-folders)")
    return {"data": str(data), **evaluate_samples(encoder, samples, seed=seed)}


def out_of_scope_flags(encoder: ImageEncoder, images: Sequence[Image.Image]) -> np.ndarray | None:
    """Which images the model refuses (None when the encoder has no scope model)."""
    scorer = cxr_scorer_for(encoder)
    if scorer is None:
        return None
    return scorer.scope.flags(scorer.features(list(images)))
