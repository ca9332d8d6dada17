"""Split documents into passages with stable, content-derived ids.

Chunks follow sentence boundaries up to ``max_words`` words, with ``overlap_sentences``
sentences repeated at the start of the next chunk so an answer that straddles a boundary is
still found. A chunk id is ``<doc id>#<index>-<sha1 of the text, 10 hex>``: the same document
always yields the same ids, and an edited chunk gets a new id (stale references do not silently
point at different text).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from retrieval.corpus import Document

DEFAULT_MAX_WORDS = 180
DEFAULT_OVERLAP_SENTENCES = 1

# A sentence ends at . ! ? followed by space, or at a line break (MedQuAD lists use lines).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class ChunkingParams:
    max_words: int = DEFAULT_MAX_WORDS
    overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES

    def __post_init__(self) -> None:
        if self.max_words < 8:
            raise ValueError("max_words must be at least 8")
        if self.overlap_sentences < 0:
            raise ValueError("overlap_sentences must be >= 0")


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    index: int
    text: str
    title: str = ""
    source: str = ""
    url: str | None = None
    license: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, object]:
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "index": self.index,
            "text": self.text,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "license": self.license,
            "metadata": self.metadata,
        }

    @classmethod
    def from_record(cls, rec: dict[str, object]) -> Chunk:
        meta = rec.get("metadata") or {}
        return cls(
            id=str(rec["id"]),
            doc_id=str(rec["doc_id"]),
            index=int(str(rec["index"])),
            text=str(rec["text"]),
            title=str(rec.get("title") or ""),
            source=str(rec.get("source") or ""),
            url=str(rec["url"]) if rec.get("url") else None,
            license=str(rec["license"]) if rec.get("license") else None,
            metadata={str(k): str(v) for k, v in dict(meta).items()},  # type: ignore[call-overload]
        )


def chunk_id(doc_id: str, index: int, text: str) -> str:
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return f"{doc_id}#{index}-{digest}"


def split_sentences(text: str, max_words: int) -> list[str]:
    """Sentences of ``text``; a sentence longer than ``max_words`` is cut into word windows."""
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        for start in range(0, len(words), max_words):
            out.append(" ".join(words[start : start + max_words]))
    return [s for s in out if s]


def _windows(sentences: list[str], params: ChunkingParams) -> Iterator[str]:
    start = 0
    while start < len(sentences):
        words = 0
        end = start
        while end < len(sentences):
            n = len(sentences[end].split())
            if end > start and words + n > params.max_words:
                break
            words += n
            end += 1
        yield " ".join(sentences[start:end])
        if end >= len(sentences):
            return
        # Step back for overlap, but always advance at least one sentence.
        start = max(start + 1, end - params.overlap_sentences)


def chunk_document(doc: Document, params: ChunkingParams | None = None) -> list[Chunk]:
    params = params or ChunkingParams()
    sentences = split_sentences(doc.text, params.max_words)
    chunks: list[Chunk] = []
    for index, text in enumerate(_windows(sentences, params)):
        chunks.append(
            Chunk(
                id=chunk_id(doc.id, index, text),
                doc_id=doc.id,
                index=index,
                text=text,
                title=doc.title,
                source=doc.source,
                url=doc.url,
                license=doc.license,
                metadata=dict(doc.metadata),
            )
        )
    return chunks


def chunk_documents(docs: Iterable[Document], params: ChunkingParams | None = None) -> list[Chunk]:
    """All chunks, in document order; duplicate document ids are an error (ids must be stable)."""
    seen: set[str] = set()
    out: list[Chunk] = []
    for doc in docs:
        if doc.id in seen:
            raise ValueError(f"duplicate document id: {doc.id}")
        seen.add(doc.id)
        out.extend(chunk_document(doc, params))
    return out
