"""Refuse to index evaluation material.

Retrieval-augmented evaluation is only meaningful when the index cannot hand the model the
benchmark item itself (PubMedQA contexts, MedMCQA explanations, MedQA / MMLU / MedXpertQA
questions). Two independent checks run on every document before it is chunked:

1. Source tags: a document whose ``source`` (or ``id`` prefix) names a benchmark is rejected.
2. Fingerprints (when benchmark files are given): every benchmark text is cut into word
   8-grams after normalisation and hashed; a document is rejected when at least
   ``max_overlap`` of its own 8-grams (or ``min_shared`` 8-grams for long documents) occur in
   the benchmark set. This catches copies that arrive under an innocent-looking source tag.

Overlap by coincidence is rare at 8 words (medical prose repeats phrases like "is a rare
genetic disorder", which are shorter), and the test suite checks that the shipped MedQuAD
corpus passes against the real benchmark files while pasted benchmark text is caught.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.corpus import Document

# Names (lower-case) that mark benchmark material when they appear in a source tag or id prefix.
BENCHMARK_TAGS: frozenset[str] = frozenset(
    {
        "pubmedqa",
        "medmcqa",
        "medqa",
        "mmlu",
        "mmlu_medical",
        "medxpertqa",
        "usmle",
        "bioasq",
        "mirage",
        "benchmark",
    }
)
SHINGLE = 8
_WORD = re.compile(r"[a-z0-9]+")


class EvaluationMaterialError(ValueError):
    """A document to index is (or copies) benchmark material."""


def _tag_tokens(text: str) -> set[str]:
    return set(re.split(r"[^a-z0-9_]+", text.lower())) - {""}


def _shingle_hashes(text: str, size: int = SHINGLE) -> np.ndarray:
    words = _WORD.findall(text.lower())
    if len(words) < size:
        # Short texts (a short question) are fingerprinted whole, so they can still match.
        grams: Iterable[str] = [" ".join(words)] if words else []
    else:
        grams = (" ".join(words[i : i + size]) for i in range(len(words) - size + 1))
    hashes = [int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams]
    return np.unique(np.asarray(hashes, dtype=np.uint64))


def benchmark_texts(benchmark_dir: Path) -> Iterator[tuple[str, str]]:
    """(benchmark name, text) for every question/context/explanation in the known benchmark files.

    Reads the layouts of ``../shared/data/benchmarks``: ``*/*.jsonl`` (question, options,
    label_rationale/explanation) and PubMedQA ``*.json`` (QUESTION, CONTEXTS, LONG_ANSWER).
    """
    for path in sorted(benchmark_dir.rglob("*.jsonl")):
        name = path.parent.name
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                yield from ((name, t) for t in _item_texts(item))
    for path in sorted(benchmark_dir.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        items = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
        for item in items:
            if isinstance(item, dict):
                yield from ((path.parent.name, t) for t in _item_texts(item))


def _item_texts(item: dict[str, object]) -> Iterator[str]:
    for key in ("question", "QUESTION", "label_rationale", "explanation", "exp", "LONG_ANSWER", "context"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            yield value
    contexts = item.get("CONTEXTS") or item.get("contexts")
    if isinstance(contexts, list):
        yield from (c for c in contexts if isinstance(c, str))


@dataclass
class BenchmarkGuard:
    """Rejects documents tagged as, or copied from, evaluation material."""

    fingerprints: np.ndarray  # sorted unique uint64 shingle hashes of all benchmark texts
    max_overlap: float = 0.2
    min_shared: int = 12

    @classmethod
    def tags_only(cls) -> BenchmarkGuard:
        return cls(fingerprints=np.empty(0, dtype=np.uint64))

    @classmethod
    def from_texts(cls, texts: Iterable[str], **kwargs: float) -> BenchmarkGuard:
        parts = [_shingle_hashes(t) for t in texts]
        prints = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)
        return cls(fingerprints=prints, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_benchmark_dir(cls, benchmark_dir: Path, **kwargs: float) -> BenchmarkGuard:
        if not benchmark_dir.is_dir():
            raise FileNotFoundError(f"benchmark directory not found: {benchmark_dir}")
        return cls.from_texts((t for _, t in benchmark_texts(benchmark_dir)), **kwargs)

    def reason(self, doc: Document) -> str | None:
        """Why ``doc`` must not be indexed, or None when it may be."""
        tags = _tag_tokens(doc.source) | _tag_tokens(doc.id.split(":", 1)[0])
        tags |= _tag_tokens(doc.metadata.get("dataset", "")) if doc.metadata else set()
        hit = tags & BENCHMARK_TAGS
        if hit:
            return f"source tag {sorted(hit)[0]!r} marks benchmark material"
        if self.fingerprints.size == 0:
            return None
        own = _shingle_hashes(doc.text)
        if own.size == 0:
            return None
        shared = self._shared(own)
        if shared / own.size >= self.max_overlap or shared >= self.min_shared:
            return f"{shared} of {own.size} 8-word shingles copy benchmark text"
        return None

    def _shared(self, own: np.ndarray) -> int:
        # Binary search in the sorted fingerprint array: O(m log n), no per-document sort.
        pos = np.searchsorted(self.fingerprints, own)
        pos[pos >= self.fingerprints.size] = 0
        return int((self.fingerprints[pos] == own).sum())

    def partition(self, docs: Sequence[Document]) -> tuple[list[Document], list[tuple[str, str]]]:
        """(documents that may be indexed, [(rejected id, reason)])."""
        kept: list[Document] = []
        rejected: list[tuple[str, str]] = []
        for doc in docs:
            why = self.reason(doc)
            if why is None:
                kept.append(doc)
            else:
                rejected.append((doc.id, why))
        return kept, rejected

    def check(self, docs: Sequence[Document]) -> None:
        """Raise :class:`EvaluationMaterialError` naming the first offending documents."""
        bad = [(d.id, r) for d in docs if (r := self.reason(d)) is not None]
        if bad:
            listed = "; ".join(f"{doc_id}: {why}" for doc_id, why in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            raise EvaluationMaterialError(f"refusing to index evaluation material: {listed}{more}")
