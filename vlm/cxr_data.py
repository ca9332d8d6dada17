"""Labelled chest X-ray folders: labels from paths, patient groups, the split, a pixel cache.

Layout (the Kermany pediatric CXR set and ``medkg vision eval``): one sub-folder per label,
``NORMAL/`` and ``PNEUMONIA/``; a pneumonia file name says ``bacteria`` or ``virus``.
Patients: ``person123_bacteria_4.jpeg`` -> ``person123``; ``IM-0115-0001.jpeg`` -> ``IM-0115``;
``NORMAL2-IM-0955-0001.jpeg`` -> ``NORMAL2-IM-0955``. The split is by patient, never by
image: two views of one child on both sides would inflate every validation number.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES: tuple[str, ...] = ("normal", "bacterial", "viral")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_IM = re.compile(r"^((?:[a-z0-9]+-)?IM-\d+)-", re.IGNORECASE)


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str  # one of CLASSES; "pneumonia" when the name says neither bacteria nor virus
    group: str  # patient id

    @property
    def pneumonia(self) -> bool:
        return self.label != "normal"


def patient_id(filename: str) -> str:
    """The patient a file belongs to (the whole stem when the name follows no known pattern)."""
    name = Path(filename).name
    for pattern in (_PERSON, _IM):
        match = pattern.match(name)
        if match:
            return match.group(1).upper() if pattern is _IM else match.group(1).lower()
    return Path(name).stem


def label_of(path: Path) -> str | None:
    """normal / bacterial / viral / pneumonia from the folder and file name; None if unlabelled."""
    folder = path.parent.name.lower()
    name = path.name.lower()
    if folder == "normal":
        return "normal"
    if folder == "pneumonia":
        if "bacteria" in name:
            return "bacterial"
        if "virus" in name:
            return "viral"
        return "pneumonia"
    return None


def scan(data_dir: Path) -> list[Sample]:
    """Every labelled image under ``data_dir`` (NORMAL/ and PNEUMONIA/ at any depth), sorted."""
    samples = []
    for path in sorted(data_dir.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            label = label_of(path)
            if label is not None:
                samples.append(Sample(path=path, label=label, group=patient_id(path.name)))
    return samples


def in_validation(group: str, *, fraction: float, seed: int) -> bool:
    """Deterministic patient-level assignment: a hash, so it is independent of file order."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_by_patient(
    samples: Sequence[Sample], *, fraction: float = 0.15, seed: int = 0
) -> tuple[list[Sample], list[Sample]]:
    """(train, validation); every image of one patient lands on the same side."""
    train: list[Sample] = []
    val: list[Sample] = []
    for sample in samples:
        (val if in_validation(sample.group, fraction=fraction, seed=seed) else train).append(sample)
    return train, val


def load_gray(path: Path, size: int) -> np.ndarray:
    """Grayscale pixels resized like the inference preprocessing (shortest side, centre crop)."""
    with Image.open(path) as image:
        gray = image.convert("L")
        width, height = gray.size
        scale = size / min(width, height)
        resized = gray.resize(
            (max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC
        )
        left = (resized.width - size) // 2
        top = (resized.height - size) // 2
        return np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.uint8)


def pixel_cache(samples: Sequence[Sample], size: int, cache_dir: Path | None) -> np.ndarray:
    """uint8 array (n, size, size), decoded once and cached as .npy keyed by files and size."""
    key = hashlib.sha256(
        "\n".join(f"{s.path}:{s.path.stat().st_size}" for s in samples).encode() + f"@{size}".encode()
    ).hexdigest()[:16]
    cache = cache_dir / f"cxr-{size}-{key}.npy" if cache_dir else None
    if cache is not None and cache.is_file():
        return np.load(cache)
    pixels = (
        np.stack([load_gray(s.path, size) for s in samples])
        if samples
        else np.zeros((0, size, size), np.uint8)
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, pixels)
    return pixels
