"""Maintainers: (re)build the shipped vector artifact from a corpus (``medkg index build-artifact``).

Deterministic: the chunks come from the shipped corpus in file order, the texts are embedded
longest first in fixed batches (ties by key), and the file is written sorted by key. A float32
cache (``--cache``) keeps finished slices, so an interrupted build resumes instead of starting
over, and a rebuild after a small corpus change embeds only the new texts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from retrieval.artifact import (
    ARTIFACT_FILE,
    ArtifactHeader,
    chunk_keys_hash,
    load_artifact,
    text_key,
    write_artifact,
)
from retrieval.builder import embedding_text
from retrieval.chunking import ChunkingParams, chunk_documents
from retrieval.corpus import Document
from retrieval.embedding import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_MODEL, get_embedder

log = logging.getLogger(__name__)

SLICE = 2048  # texts per cached slice (a multiple of the batch size keeps batches identical)
BATCH = 128


def _load_cache(cache: Path | None) -> dict[bytes, np.ndarray]:
    if cache is None or not cache.with_suffix(".keys.npy").is_file():
        return {}
    keys = np.load(cache.with_suffix(".keys.npy"))
    vecs = np.load(cache.with_suffix(".vecs.npy"))
    return {bytes(k): v for k, v in zip(keys, vecs, strict=True)}


def _save_cache(cache: Path | None, known: dict[bytes, np.ndarray]) -> None:
    if cache is None or not known:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    keys = list(known)
    np.save(cache.with_suffix(".keys.npy"), np.array(keys, dtype=f"V{len(keys[0])}"))
    np.save(cache.with_suffix(".vecs.npy"), np.stack([known[k] for k in keys]))


def _offset(
    progress: Callable[[int, int], None] | None, start: int, total: int
) -> Callable[[int, int], None] | None:
    """Slice progress as progress over the whole list."""
    if progress is None:
        return None
    report = progress

    def shifted(done: int, _slice_total: int) -> None:
        report(start + done, total)

    return shifted


def build_artifact(
    docs: Sequence[Document],
    *,
    out: Path = ARTIFACT_FILE,
    model: str = DEFAULT_MODEL,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    params: ChunkingParams | None = None,
    cache: Path | None = None,
    reuse_shipped: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ArtifactHeader:
    """Embed every distinct chunk text of ``docs`` (or reuse cached vectors) and write ``out``.

    ``reuse_shipped`` also takes vectors of unchanged texts from the artifact already at
    ``out`` (quantised: fine for a small update, but a release build should start from floats).
    """
    params = params or ChunkingParams()
    chunks = chunk_documents(docs, params)
    texts = [embedding_text(c) for c in chunks]
    keys = [text_key(t) for t in texts]
    unique: dict[bytes, str] = {}
    for key, text in zip(keys, texts, strict=True):
        unique.setdefault(key, text)
    known = _load_cache(cache)
    known = {k: v for k, v in known.items() if k in unique}
    embedder = get_embedder(model, max_seq_length=max_seq_length)
    old = load_artifact(out) if reuse_shipped else None
    if old is not None and not old.compatible(
        model=model, max_seq_length=embedder.max_seq_length, dimension=embedder.dimension, params=params
    ):
        wanted = [k for k in unique if k not in known]
        found, vecs = old.lookup(wanted)
        for key, vec in zip([k for k, f in zip(wanted, found, strict=True) if f], vecs, strict=True):
            known[key] = vec
    todo = sorted((k for k in unique if k not in known), key=lambda k: (-len(unique[k]), k))
    log.info("%d chunks, %d distinct texts, %d to embed", len(chunks), len(unique), len(todo))
    started = time.perf_counter()
    for start in range(0, len(todo), SLICE):
        part = todo[start : start + SLICE]
        vecs = embedder.encode(
            [unique[k] for k in part],
            batch_size=BATCH,
            progress=_offset(progress, start, len(todo)),
        )
        known.update(zip(part, vecs, strict=True))
        _save_cache(cache, known)
        rate = (start + len(part)) / max(time.perf_counter() - started, 1e-9)
        log.info("embedded %d/%d (%.1f texts/s)", start + len(part), len(todo), rate)
    ordered = list(unique)
    header = ArtifactHeader(
        model=model,
        max_seq_length=embedder.max_seq_length,
        dimension=embedder.dimension,
        chunk_max_words=params.max_words,
        chunk_overlap_sentences=params.overlap_sentences,
        n_vectors=len(ordered),
        n_chunks=len(chunks),
        corpus_hash=chunk_keys_hash(keys),
    )
    write_artifact(out, header, ordered, np.stack([known[k] for k in ordered]))
    return header
