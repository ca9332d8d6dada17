"""``HybridRetriever``: dense (FAISS) + BM25 fused by reciprocal rank, over an index on disk."""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from retrieval import dense
from retrieval.base import Passage
from retrieval.chunking import Chunk
from retrieval.embedding import Embedder
from retrieval.lexical import BM25Index
from retrieval.manifest import IndexManifest

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "bm25")
CHUNKS_NAME = "chunks.jsonl.gz"
DENSE_NAME = "dense.faiss"
BM25_DIR = "bm25"
# Queries longer than this are cut: the embedder sees 128 tokens anyway, and BM25 cost grows
# with query terms. A 100k-character paste then costs the same as a paragraph.
MAX_QUERY_CHARS = 2_000
MAX_K = 1_000
RRF_K = 60  # Cormack et al. 2009; robust default, flattens the head of each list
_HAS_WORD = re.compile(r"[^\W_]", re.UNICODE)
_FIELDS = ("source", "title", "license", "url", "doc_id", "id")


def normalise_query(query: object) -> str | None:
    """The query to run, or None when it carries nothing to search for."""
    if not isinstance(query, str):
        return None
    text = query.strip()[:MAX_QUERY_CHARS]
    if not _HAS_WORD.search(text):  # empty, whitespace, punctuation, emoji
        return None
    return text


def rrf_fuse(rankings: Sequence[Sequence[int]], rrf_k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: rows ordered by sum of 1/(rrf_k + rank) over the rankings."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            fused[row] = fused.get(row, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


class HybridRetriever:
    """A ``Retriever`` over one index directory (see ``build_or_load_index``)."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: faiss.Index,
        bm25: BM25Index,
        embedder: Embedder,
        manifest: IndexManifest,
        *,
        mode: Mode = "hybrid",
        index_dir: Path | None = None,
        candidates: int = 50,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if vectors.ntotal != len(chunks) or bm25.size != len(chunks):
            raise ValueError("index parts disagree on the number of chunks")
        self.chunks = list(chunks)
        self.vectors = vectors
        self.bm25 = bm25
        self.embedder = embedder
        self.manifest = manifest
        self.mode: Mode = mode
        self.index_dir = index_dir
        self.candidates = candidates
        self._columns: dict[str, dict[str, np.ndarray]] = {}

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, index_dir: Path, embedder: Embedder, *, mode: Mode = "hybrid") -> HybridRetriever:
        manifest = IndexManifest.load(index_dir)
        if manifest is None:
            raise FileNotFoundError(f"no index manifest in {index_dir}")
        chunks = cls.read_chunks(index_dir)
        vectors = dense.load_index(index_dir / DENSE_NAME)
        bm25 = BM25Index.load(index_dir / BM25_DIR)
        return cls(chunks, vectors, bm25, embedder, manifest, mode=mode, index_dir=index_dir)

    @staticmethod
    def read_chunks(index_dir: Path) -> list[Chunk]:
        with gzip.open(index_dir / CHUNKS_NAME, "rt", encoding="utf-8") as fh:
            return [Chunk.from_record(json.loads(line)) for line in fh]

    def save(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        with gzip.open(index_dir / CHUNKS_NAME, "wt", encoding="utf-8") as fh:
            for chunk in self.chunks:
                fh.write(json.dumps(chunk.to_record(), ensure_ascii=False) + "\n")
        dense.save_index(self.vectors, index_dir / DENSE_NAME)
        (index_dir / BM25_DIR).mkdir(exist_ok=True)
        self.bm25.save(index_dir / BM25_DIR)
        # The manifest goes last: its presence marks a complete index.
        self.manifest.save(index_dir)

    def with_mode(self, mode: Mode) -> HybridRetriever:
        """The same index searched another way (shares all data; for comparisons)."""
        twin = HybridRetriever(
            self.chunks,
            self.vectors,
            self.bm25,
            self.embedder,
            self.manifest,
            mode=mode,
            index_dir=self.index_dir,
            candidates=self.candidates,
        )
        twin._columns = self._columns
        return twin

    def __len__(self) -> int:
        return len(self.chunks)

    # -- search ------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int = 5,
        filters: Mapping[str, str] | None = None,
        *,
        mode: Mode | None = None,
    ) -> list[Passage]:
        """Best ``k`` passages; [] for an empty or meaningless query, k <= 0, or no match."""
        mode = mode or self.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        text = normalise_query(query)
        if text is None or not isinstance(k, int) or k <= 0 or not self.chunks:
            return []
        k = min(k, MAX_K)
        allowed = self._allowed_rows(filters) if filters else None
        if allowed is not None and allowed.size == 0:
            return []
        depth = max(self.candidates, 4 * k)
        if mode == "dense":
            rows, scores = self._dense(text, k, allowed)
            return self._passages(rows[:k], scores[:k], mode)
        if mode == "bm25":
            rows, scores = self._bm25(text, k, allowed)
            return self._passages(rows[:k], scores[:k], mode)
        dense_rows, _ = self._dense(text, depth, allowed)
        bm25_rows, _ = self._bm25(text, depth, allowed)
        fused = rrf_fuse([dense_rows.tolist(), bm25_rows.tolist()])[:k]
        return self._passages(
            np.array([row for row, _ in fused], dtype=np.int64),
            np.array([score for _, score in fused], dtype=np.float32),
            mode,
        )

    def _dense(self, text: str, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        vector = self.embedder.encode_query(text)
        scores, rows = dense.search(self.vectors, vector, k, allowed)
        return rows, scores

    def _bm25(self, text: str, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.bm25.search(text, k, allowed)
        return rows, scores

    def _passages(self, rows: np.ndarray, scores: np.ndarray, mode: str) -> list[Passage]:
        out = []
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
            chunk = self.chunks[row]
            meta = dict(chunk.metadata)
            meta.update({"doc_id": chunk.doc_id, "chunk_index": str(chunk.index), "retrieval": mode})
            out.append(
                Passage(
                    id=chunk.id,
                    text=chunk.text,
                    title=chunk.title,
                    source=chunk.source,
                    url=chunk.url,
                    license=chunk.license,
                    score=float(score),
                    metadata=meta,
                )
            )
        return out

    # -- filters -----------------------------------------------------------------------------
    def _column(self, key: str) -> dict[str, np.ndarray]:
        """value -> row ids for one filterable field (built on first use)."""
        if key not in self._columns:
            groups: dict[str, list[int]] = {}
            for row, chunk in enumerate(self.chunks):
                value = getattr(chunk, key) if key in _FIELDS else chunk.metadata.get(key)
                if value is not None:
                    groups.setdefault(str(value), []).append(row)
            self._columns[key] = {v: np.asarray(r, dtype=np.int64) for v, r in groups.items()}
        return self._columns[key]

    def _allowed_rows(self, filters: Mapping[str, str]) -> np.ndarray:
        """Rows matching every filter exactly (an unknown key or value matches nothing)."""
        allowed: np.ndarray | None = None
        for key, value in filters.items():
            rows = self._column(str(key)).get(str(value), np.empty(0, dtype=np.int64))
            allowed = rows if allowed is None else np.intersect1d(allowed, rows, assume_unique=True)
            if allowed.size == 0:
                break
        return allowed if allowed is not None else np.arange(len(self.chunks), dtype=np.int64)
