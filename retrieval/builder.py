"""Build an index directory from the corpus, or load it when its manifest still matches."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import dense
from retrieval.artifact import ARTIFACT_FILE, VectorArtifact, load_artifact, text_key
from retrieval.chunking import Chunk, ChunkingParams, chunk_documents
from retrieval.corpus import Document, documents_from_mappings, medquad_documents
from retrieval.embedding import DEFAULT_MAX_SEQ_LENGTH, DEFAULT_MODEL, Embedder, get_embedder, model_identity
from retrieval.guard import BenchmarkGuard, EvaluationMaterialError
from retrieval.hybrid import HybridRetriever, Mode
from retrieval.lexical import BM25Index
from retrieval.manifest import IndexManifest, corpus_checksum
from retrieval.progress import BuildProgress, ProgressListener, ProgressTracker

log = logging.getLogger(__name__)

# Where the vectors of a build may come from before anything is embedded: the shipped
# artifact by default; None embeds everything (used by the before/after measurements).
DEFAULT_ARTIFACT: Path | None = ARTIFACT_FILE
# Texts per embedding batch: large enough to amortise the per-call cost, small enough that
# progress moves every few seconds and a query waits for at most one batch.
EMBED_BATCH = 128


def _log_progress(stage: str, done: int, total: int) -> None:
    log.info("index build: %s %d/%d", stage, done, total)


def embedding_text(chunk: Chunk) -> str:
    # The title (MedQuAD focus, disease name) carries the topic that chunks in the middle of a
    # long answer often never name; both the embedder and BM25 see it.
    return f"{chunk.title}. {chunk.text}" if chunk.title else chunk.text


def collect_documents(
    *,
    extra_documents: Iterable[Mapping[str, Any] | Document] = (),
    limit: int | None = None,
    include_medquad: bool = True,
    guard: BenchmarkGuard | None = None,
) -> tuple[list[Document], list[str]]:
    """The documents to index and the "id: reason" of those the guard left out.

    A document *tagged* as benchmark material raises :class:`EvaluationMaterialError` (someone
    passed evaluation data on purpose or by mistake: stop). A document whose text merely copies
    benchmark text (fingerprint hit) is left out and listed in the manifest.
    """
    guard = guard or BenchmarkGuard.tags_only()
    docs = medquad_documents(limit=limit) if include_medquad else []
    docs += documents_from_mappings(extra_documents)
    tagged = [d for d in docs if (why := BenchmarkGuard.tags_only().reason(d)) is not None]
    if tagged:
        BenchmarkGuard.tags_only().check(tagged)  # raises with the offending ids
    kept, rejected = guard.partition(docs)
    for doc_id, why in rejected:
        log.warning("not indexing %s: %s", doc_id, why)
    return kept, [f"{doc_id}: {why}" for doc_id, why in rejected]


def _atomic_replace(staging: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _previous_vectors(index_dir: Path, model: str, max_seq_length: int) -> dict[bytes, np.ndarray]:
    """Vectors of the index already in ``index_dir`` (same model), keyed by text: a corpus
    edit then re-embeds only the chunks whose text changed. {} when absent or unreadable."""
    stored = IndexManifest.load(index_dir)
    if stored is None or stored.model != model or stored.max_seq_length != max_seq_length:
        return {}
    try:
        chunks = HybridRetriever.read_chunks(index_dir)
        index = dense.load_index(index_dir / "dense.faiss")
        if index.ntotal != len(chunks):
            return {}
        vectors = index.reconstruct_n(0, index.ntotal)
    except (OSError, ValueError, RuntimeError) as exc:
        log.info("previous index in %s not reusable: %s", index_dir, exc)
        return {}
    return {text_key(embedding_text(c)): v for c, v in zip(chunks, vectors, strict=True)}


def _report_embed(tracker: ProgressTracker, done: int, total: int) -> None:
    tracker.update("embed", done, total)


def gather_vectors(
    texts: list[str],
    embedder: Embedder,
    tracker: ProgressTracker,
    *,
    artifact: VectorArtifact | None,
    previous: dict[bytes, np.ndarray] | None = None,
    background: bool = False,
) -> np.ndarray:
    """Unit vectors for ``texts``: from the artifact, else the previous index, else embedded.

    Only the texts found in neither are embedded (length-sorted batches, see Embedder.encode);
    the tracker reports the embedded ones as done/total with an ETA.
    """
    keys = [text_key(t) for t in texts]
    out = np.empty((len(texts), embedder.dimension), dtype=np.float32)
    have = np.zeros(len(texts), dtype=bool)
    if artifact is not None:
        found, vecs = artifact.lookup(keys)
        out[found] = vecs
        have |= found
    if previous:
        for i in np.flatnonzero(~have):
            vec = previous.get(keys[i])
            if vec is not None:
                out[i] = vec
                have[i] = True
    missing = np.flatnonzero(~have)
    tracker.plan(len(texts), int(have.sum()), int(missing.size))
    tracker.update("vectors", int(have.sum()), len(texts))
    if missing.size:
        log.info("embedding %d of %d chunks (the rest reuse stored vectors)", missing.size, len(texts))
        tracker.update("embed", 0, int(missing.size))
        out[missing] = embedder.encode(
            [texts[i] for i in missing],
            batch_size=EMBED_BATCH,
            background=background,
            progress=lambda done, total: _report_embed(tracker, done, total),
        )
    return out


def build_index(
    index_dir: Path,
    docs: list[Document],
    *,
    model: str,
    index_kind: str,
    params: ChunkingParams,
    max_seq_length: int,
    excluded: list[str],
    checksum: str,
    progress: BuildProgress | None = None,
    on_progress: ProgressListener | None = None,
    artifact: Path | None = DEFAULT_ARTIFACT,
    tracker: ProgressTracker | None = None,
    background: bool = False,
) -> HybridRetriever:
    """Vectors (stored or embedded), FAISS + BM25, all written to ``index_dir`` atomically."""
    started = time.perf_counter()
    tracker = tracker or ProgressTracker(on_progress, legacy=progress or _log_progress)
    tracker.update("prepare", 0, 1, "chunking the corpus")
    chunks = chunk_documents(docs, params)
    if not chunks:
        raise ValueError("nothing to index: the corpus is empty")
    embedder = get_embedder(model, max_seq_length=max_seq_length)
    texts = [embedding_text(c) for c in chunks]
    shipped = load_artifact(artifact)
    if shipped is not None:
        why = shipped.compatible(
            model=model, max_seq_length=embedder.max_seq_length, dimension=embedder.dimension, params=params
        )
        if why:
            log.warning("not using the vector artifact %s: %s", artifact, "; ".join(why))
            shipped = None
    previous = _previous_vectors(index_dir, model, embedder.max_seq_length)
    vectors = gather_vectors(
        texts, embedder, tracker, artifact=shipped, previous=previous, background=background
    )
    kind = dense.choose_index_kind(len(chunks), index_kind)
    tracker.update("index", 0, 2, f"{kind} FAISS index and BM25")
    faiss_index = dense.build_index(vectors, kind)
    tracker.update("index", 1, 2, "BM25")
    bm25 = BM25Index.build(texts)
    tracker.update("index", 2, 2)
    manifest = IndexManifest(
        corpus_checksum=checksum,
        n_documents=len(docs),
        n_chunks=len(chunks),
        sources=dict(Counter(d.source or "unknown" for d in docs)),
        model=model,
        model_path=model_identity(model),
        dimension=embedder.dimension,
        max_seq_length=embedder.max_seq_length,
        index_kind=kind,
        requested_index_kind=index_kind,
        chunk_max_words=params.max_words,
        chunk_overlap_sentences=params.overlap_sentences,
        excluded=excluded,
        build_seconds=round(time.perf_counter() - started, 2),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reused_vectors=tracker.reused,
        embedded_vectors=tracker.to_embed,
    )
    retriever = HybridRetriever(chunks, faiss_index, bm25, embedder, manifest)
    tracker.update("save", 0, 1)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = index_dir.with_name(f".{index_dir.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    retriever.save(staging)
    _atomic_replace(staging, index_dir)
    retriever.index_dir = index_dir
    log.info(
        "built %s index: %d chunks from %d documents in %.1f s (%d vectors reused, %d embedded)",
        kind,
        len(chunks),
        len(docs),
        manifest.build_seconds,
        tracker.reused,
        tracker.to_embed,
    )
    return retriever


def build_or_load_index(
    index_dir: str | Path,
    *,
    model: str = DEFAULT_MODEL,
    extra_documents: Iterable[Mapping[str, Any] | Document] = (),
    limit: int | None = None,
    index_kind: str = "auto",
    force: bool = False,
    benchmark_dir: str | Path | None = None,
    include_medquad: bool = True,
    chunking: ChunkingParams | None = None,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    mode: Mode = "hybrid",
    progress: BuildProgress | None = None,
    on_progress: ProgressListener | None = None,
    artifact: Path | None = DEFAULT_ARTIFACT,
    background: bool = False,
) -> HybridRetriever:
    """The index in ``index_dir``: loaded when its manifest matches this corpus and model,
    rebuilt (atomically) otherwise, or always with ``force``.

    A build takes the vectors of unchanged chunks from ``artifact`` (the shipped int8 MiniLM
    vectors; None: embed everything) and from the index being replaced, and embeds only the
    rest (``background``: on one thread at low priority, for a build while the app serves).
    ``on_progress`` receives :class:`~retrieval.progress.IndexProgress` snapshots
    (stage, done/total, ETA), ending with stage ``ready`` whether built or loaded.

    ``limit`` indexes an evenly spread subset of that many MedQuAD pairs. ``benchmark_dir``
    (e.g. ../shared/data/benchmarks) turns on the fingerprint screen against benchmark files;
    source tags naming a benchmark are always refused (:class:`EvaluationMaterialError`).
    """
    index_dir = Path(index_dir)
    params = chunking or ChunkingParams()
    tracker = ProgressTracker(on_progress, legacy=progress or _log_progress)
    dense.choose_index_kind(0, index_kind)  # validate early
    guard = BenchmarkGuard.from_benchmark_dir(Path(benchmark_dir)) if benchmark_dir else None
    tracker.update("prepare", 0, 1, "reading the corpus")
    docs, excluded = collect_documents(
        extra_documents=extra_documents, limit=limit, include_medquad=include_medquad, guard=guard
    )
    checksum = corpus_checksum(docs, params)
    expected = IndexManifest(
        corpus_checksum=checksum,
        n_documents=len(docs),
        model=model,
        max_seq_length=max_seq_length,
        index_kind="",
        requested_index_kind=index_kind,
        chunk_max_words=params.max_words,
        chunk_overlap_sentences=params.overlap_sentences,
    )
    stored = None if force else IndexManifest.load(index_dir)
    if stored is not None:
        embedder = get_embedder(model, max_seq_length=max_seq_length)
        expected.dimension = embedder.dimension
        expected.max_seq_length = embedder.max_seq_length
        reasons = stored.mismatch(expected)
        if not reasons:
            try:
                retriever = HybridRetriever.load(index_dir, embedder, mode=mode)
                log.info("loaded %s index from %s (%d chunks)", stored.index_kind, index_dir, len(retriever))
                tracker.plan(len(retriever), len(retriever), 0)
                tracker.update("ready", len(retriever), len(retriever), "loaded")
                return retriever
            except (OSError, ValueError, RuntimeError) as exc:  # damaged files: rebuild
                reasons = [f"index files unreadable: {type(exc).__name__}: {exc}"]
        log.warning("rebuilding index in %s: %s", index_dir, "; ".join(reasons))
    try:
        retriever = build_index(
            index_dir,
            docs,
            model=model,
            index_kind=index_kind,
            params=params,
            max_seq_length=max_seq_length,
            excluded=excluded,
            checksum=checksum,
            artifact=artifact,
            tracker=tracker,
            background=background,
        )
    except Exception as exc:
        tracker.update("failed", 0, 0, f"{type(exc).__name__}: {exc}")
        raise
    tracker.update("ready", len(retriever), len(retriever), "built")
    return retriever if mode == "hybrid" else retriever.with_mode(mode)


class IndexNotBuiltError(FileNotFoundError):
    """No usable index in the directory (absent, damaged, or built with another model)."""


def load_index(
    index_dir: str | Path,
    *,
    model: str = DEFAULT_MODEL,
    max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
    mode: Mode = "hybrid",
) -> HybridRetriever:
    """The index on disk, whatever corpus it holds, provided it was built with ``model``.

    For readers (``medkg index search``) that must not trigger a build; the corpus check
    belongs to :func:`build_or_load_index`.
    """
    index_dir = Path(index_dir)
    stored = IndexManifest.load(index_dir)
    if stored is None:
        raise IndexNotBuiltError(f"no index in {index_dir} (run: medkg index build)")
    embedder = get_embedder(model, max_seq_length=max_seq_length)
    if stored.model != model or stored.dimension != embedder.dimension:
        raise IndexNotBuiltError(
            f"index in {index_dir} was built with {stored.model!r} (d={stored.dimension}), "
            f"not {model!r} (d={embedder.dimension}): rebuild it (medkg index build)"
        )
    try:
        return HybridRetriever.load(index_dir, embedder, mode=mode)
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexNotBuiltError(f"index in {index_dir} is damaged ({exc}): rebuild it") from exc


__all__ = [
    "EvaluationMaterialError",
    "IndexNotBuiltError",
    "build_or_load_index",
    "collect_documents",
    "load_index",
]
