"""Index build progress as a typed snapshot (done, total, ETA) for the terminal and /healthz.

``build_or_load_index(..., on_progress=fn)`` calls ``fn(IndexProgress)`` at each stage and
after every embedded batch; :class:`ProgressTracker` keeps the latest snapshot so a health
endpoint can read it from another thread without a callback of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel

Stage = Literal["prepare", "vectors", "embed", "index", "save", "ready", "failed"]


class IndexProgress(BaseModel):
    """One snapshot of an index build (or load).

    ``done``/``total`` count chunks in the ``vectors`` and ``embed`` stages (embed: only the
    chunks the artifact could not supply) and steps otherwise; ``eta_s`` is the remaining time
    of the whole build as far as it can be estimated (None before the first embedded batch).
    """

    stage: Stage
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None = None
    rate_per_s: float | None = None  # chunks embedded per second in the embed stage
    chunks: int = 0  # chunks in the index being built
    reused: int = 0  # vectors taken from the shipped artifact or the previous index
    to_embed: int = 0  # chunks that need the embedding model
    message: str = ""

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    def line(self) -> str:
        """A one-line human form, e.g. ``embed 1200/3000 (40%), 35 s, ~52 s left``."""
        eta = f", ~{self.eta_s:.0f} s left" if self.eta_s is not None and self.stage != "ready" else ""
        rate = f", {self.rate_per_s:.1f} chunks/s" if self.rate_per_s else ""
        return (
            f"{self.stage} {self.done}/{self.total} ({self.fraction:.0%}), {self.elapsed_s:.0f} s{rate}{eta}"
        )


ProgressListener = Callable[[IndexProgress], None]
# The older three-argument form (stage, done, total), still accepted by the builder.
BuildProgress = Callable[[str, int, int], None]

# Seconds for the FAISS + BM25 + save stages of a ~30k-chunk corpus on 2 cores, measured
# (docs/retrieval.md); scaled by size for the ETA while embedding is still running.
_INDEX_SECONDS_PER_CHUNK = 10.0 / 30_000


class ProgressTracker:
    """Turns build events into :class:`IndexProgress` snapshots; thread-safe ``latest``."""

    def __init__(self, *listeners: ProgressListener | None, legacy: BuildProgress | None = None) -> None:
        self._listeners = [fn for fn in listeners if fn is not None]
        self._legacy = legacy
        self._started = time.monotonic()
        self._embed_started: float | None = None
        self._lock = threading.Lock()
        self.latest: IndexProgress | None = None
        self.chunks = 0
        self.reused = 0
        self.to_embed = 0

    def plan(self, chunks: int, reused: int, to_embed: int) -> None:
        self.chunks, self.reused, self.to_embed = chunks, reused, to_embed

    def update(self, stage: Stage, done: int, total: int, message: str = "") -> IndexProgress:
        now = time.monotonic()
        rate = eta = None
        index_eta = self.chunks * _INDEX_SECONDS_PER_CHUNK
        if stage == "embed":
            if self._embed_started is None:
                self._embed_started = now
            spent = now - self._embed_started
            if done > 0 and spent > 0:
                rate = done / spent
                eta = (total - done) / rate + index_eta
        elif stage in ("prepare", "vectors", "index"):
            eta = index_eta if stage != "prepare" else None
        elif stage in ("save", "ready"):
            eta = 0.0
        snap = IndexProgress(
            stage=stage,
            done=done,
            total=total,
            elapsed_s=round(now - self._started, 3),
            eta_s=None if eta is None else round(eta, 1),
            rate_per_s=None if rate is None else round(rate, 2),
            chunks=self.chunks,
            reused=self.reused,
            to_embed=self.to_embed,
            message=message,
        )
        with self._lock:
            self.latest = snap
        for fn in self._listeners:
            fn(snap)
        if self._legacy is not None:
            self._legacy(stage, done, total)
        return snap
