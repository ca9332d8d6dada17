"""A bank of real chest X-ray reports, searched by image-to-text similarity.

The IU X-ray report texts (vlm/data/iu_xray_reports.csv.gz, see NOTICE.md) are embedded once
with the encoder's text tower and cached as ``.npy`` in the data dir, keyed by the encoder's
weights fingerprint and the report data, so a changed model or bank never reuses stale
vectors. A few thousand vectors need no ANN index: exact cosine search is a matrix product
well under a millisecond.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import BaseModel

from vlm.base import ImageEncoder

log = logging.getLogger(__name__)

REPORTS_FILE = Path(__file__).parent / "data" / "iu_xray_reports.csv.gz"
_REDACTED = re.compile(r"X{3,}(?:[ -]X{3,})*")


@dataclass(frozen=True)
class BankReport:
    uid: str
    indication: str
    findings: str
    impression: str
    problems: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The text embedded for search: what a radiologist saw in the image."""
        parts = [p for p in (self.findings, self.impression) if p]
        return " ".join(parts)


class SimilarReport(BaseModel):
    uid: str
    score: float  # cosine similarity of image and report text embeddings
    findings: str
    impression: str
    problems: list[str] = []


def load_reports(path: Path = REPORTS_FILE, *, limit: int | None = None) -> list[BankReport]:
    """The shipped reports (placeholders "XXXX" of the de-identification become "[redacted]")."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    reports = []
    for row in rows[:limit] if limit else rows:
        problems = tuple(p.strip() for p in (row.get("problems") or "").split(";") if p.strip())
        reports.append(
            BankReport(
                uid=row["uid"],
                indication=_clean(row.get("indication", "")),
                findings=_clean(row.get("findings", "")),
                impression=_clean(row.get("impression", "")),
                problems=problems,
            )
        )
    return reports


def _clean(text: str) -> str:
    return " ".join(_REDACTED.sub("[redacted]", text or "").split())


class ReportBank:
    """Reports plus their L2-normalised text embeddings from one encoder."""

    def __init__(self, reports: Sequence[BankReport], embeddings: np.ndarray, encoder_name: str) -> None:
        if len(reports) != len(embeddings):
            raise ValueError(f"{len(reports)} reports but {len(embeddings)} embeddings")
        self.reports = list(reports)
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.encoder_name = encoder_name

    def __len__(self) -> int:
        return len(self.reports)

    @classmethod
    def build_or_load(
        cls,
        encoder: ImageEncoder,
        cache_dir: Path | None = None,
        *,
        reports: Sequence[BankReport] | None = None,
        limit: int | None = None,
    ) -> ReportBank:
        """Embed the reports with ``encoder`` (or read the cached vectors from ``cache_dir``)."""
        bank_reports = list(reports) if reports is not None else load_reports(limit=limit)
        if not bank_reports:
            raise ValueError("the report bank is empty")
        texts = [r.text for r in bank_reports]
        cache = _cache_path(cache_dir, encoder, texts) if cache_dir else None
        if cache is not None and cache.is_file():
            try:
                vectors = np.load(cache, allow_pickle=False)
                if vectors.shape[0] == len(texts):
                    return cls(bank_reports, vectors, encoder.name)
            except (OSError, ValueError):
                log.warning("report bank cache %s unreadable; re-embedding", cache.name)
        vectors = encoder.encode_texts(texts)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            with partial.open("wb") as handle:
                np.save(handle, vectors, allow_pickle=False)
            os.replace(partial, cache)  # atomic: a concurrent reader never sees half a file
        return cls(bank_reports, vectors, encoder.name)

    def nearest(self, image_embedding: np.ndarray, k: int = 3) -> list[SimilarReport]:
        """The ``k`` most similar reports, identical texts collapsed (many reports are "normal")."""
        query = np.asarray(image_embedding, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.embeddings.shape[1]:
            raise ValueError(
                f"embedding size {query.shape[0]} does not match the bank's {self.embeddings.shape[1]} "
                f"(bank built with {self.encoder_name})"
            )
        scores = self.embeddings @ query
        out: list[SimilarReport] = []
        seen: set[str] = set()
        for index in np.argsort(-scores, kind="stable"):
            report = self.reports[int(index)]
            key = report.text.lower()
            if key in seen:
                continue
            seen.add(key)
            out.append(
                SimilarReport(
                    uid=report.uid,
                    score=round(float(scores[index]), 4),
                    findings=report.findings,
                    impression=report.impression,
                    problems=list(report.problems),
                )
            )
            if len(out) >= k:
                break
        return out

    def nearest_for_image(self, image: Image.Image, encoder: ImageEncoder, k: int = 3) -> list[SimilarReport]:
        return self.nearest(encoder.encode_images([image])[0], k)


def _cache_path(cache_dir: Path, encoder: ImageEncoder, texts: Sequence[str]) -> Path:
    fingerprint = str(getattr(encoder, "fingerprint", "") or encoder.name)
    digest = hashlib.sha256()
    digest.update(fingerprint.encode())
    for text in texts:
        digest.update(b"\0" + text.encode())
    return Path(cache_dir) / "report_bank" / f"iu-xray-{digest.hexdigest()[:20]}.npy"
