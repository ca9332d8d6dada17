"""The index manifest: what an index on disk was built from, so a mismatch forces a rebuild."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from retrieval.chunking import ChunkingParams
from retrieval.corpus import Document

# Bump when the on-disk layout, tokenizer or chunker changes meaning.
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class IndexManifest(BaseModel):
    format_version: int = FORMAT_VERSION
    corpus_checksum: str
    n_documents: int
    n_chunks: int = 0
    sources: dict[str, int] = Field(default_factory=dict)
    model: str
    model_path: str = ""
    dimension: int = 0
    max_seq_length: int
    index_kind: str  # resolved kind: flat / hnsw / ivf
    requested_index_kind: str = "auto"
    chunk_max_words: int
    chunk_overlap_sentences: int
    excluded: list[str] = Field(default_factory=list)  # "doc id: reason" left out by the guard
    build_seconds: float = 0.0
    created_at: str = ""
    reused_vectors: int = 0  # taken from the shipped artifact or the replaced index
    embedded_vectors: int = 0  # embedded by this build

    def mismatch(self, expected: IndexManifest) -> list[str]:
        """Why this (stored) manifest cannot serve ``expected``; empty when it can."""
        reasons = []
        for name in (
            "format_version",
            "corpus_checksum",
            "model",
            "max_seq_length",
            "chunk_max_words",
            "chunk_overlap_sentences",
            "requested_index_kind",
        ):
            have, want = getattr(self, name), getattr(expected, name)
            if have != want:
                reasons.append(f"{name}: index has {have!r}, wanted {want!r}")
        if expected.dimension and self.dimension != expected.dimension:
            reasons.append(f"dimension: index has {self.dimension}, model gives {expected.dimension}")
        return reasons

    def save(self, directory: Path) -> None:
        (directory / MANIFEST_NAME).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, directory: Path) -> IndexManifest | None:
        path = directory / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            return cls.model_validate_json(path.read_text())
        except ValueError:
            return None  # unreadable or from an incompatible version: treat as absent


def corpus_checksum(docs: Iterable[Document], params: ChunkingParams) -> str:
    """sha256 over every document's content and metadata (in order) and the chunking parameters."""
    h = hashlib.sha256()
    h.update(json.dumps([params.max_words, params.overlap_sentences]).encode())
    for doc in docs:
        record = [doc.id, doc.title, doc.source, doc.url, doc.license, sorted(doc.metadata.items()), doc.text]
        h.update(json.dumps(record, ensure_ascii=False).encode())
        h.update(b"\x00")
    return h.hexdigest()
