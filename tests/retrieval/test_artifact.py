"""The shipped vector artifact: it matches the shipped corpus, an index opens from it without
embedding, a corpus change embeds only the changed chunks, progress is monotonic, and int8
vectors rank like float ones."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from retrieval import build_or_load_index
from retrieval import builder as builder_module
from retrieval.artifact import (
    ARTIFACT_FILE,
    ArtifactHeader,
    VectorArtifact,
    chunk_keys_hash,
    dequantize,
    quantize,
    text_key,
    write_artifact,
)
from retrieval.builder import collect_documents, embedding_text
from retrieval.chunking import ChunkingParams, chunk_documents
from retrieval.corpus import medquad_documents
from retrieval.embedding import Embedder, get_embedder
from retrieval.progress import IndexProgress

# The artifact's size budget (docs/retrieval.md): one file in git, well under 25 MB.
MAX_ARTIFACT_BYTES = 25_000_000


def _app_documents() -> list:
    from assistant.indexing import graph_documents

    docs, _ = collect_documents(extra_documents=graph_documents())
    return docs


def test_shipped_artifact_matches_shipped_corpus() -> None:
    """Fails when the corpus, the graph descriptions or the chunking changed without
    `medkg index build-artifact`: the app would then embed the changed chunks on first start."""
    assert ARTIFACT_FILE.is_file(), f"{ARTIFACT_FILE} missing: run `medkg index build-artifact`"
    assert ARTIFACT_FILE.stat().st_size <= MAX_ARTIFACT_BYTES
    artifact = VectorArtifact.read(ARTIFACT_FILE)
    header = artifact.header
    params = ChunkingParams()
    assert (header.chunk_max_words, header.chunk_overlap_sentences) == (
        params.max_words,
        params.overlap_sentences,
    )
    chunks = chunk_documents(_app_documents(), params)
    keys = [text_key(embedding_text(c)) for c in chunks]
    assert header.n_chunks == len(chunks)
    assert header.corpus_hash == chunk_keys_hash(keys), "rebuild it: medkg index build-artifact"
    found, _ = artifact.lookup(keys)
    assert found.all()


@pytest.fixture
def no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Embedder, texts: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("the index should open from the artifact without embedding")

    monkeypatch.setattr(Embedder, "encode", refuse)


def test_index_opens_from_artifact_without_embedding(tmp_path: Path, no_embedding: None) -> None:
    # Documents exactly as the app indexes them (a `limit` subset may title a shared answer
    # with another pair's focus: a different text, rightly embedded).
    docs = medquad_documents()[::100]
    retriever = build_or_load_index(
        tmp_path / "index", extra_documents=docs, include_medquad=False, artifact=ARTIFACT_FILE
    )
    assert retriever.manifest.embedded_vectors == 0
    assert retriever.manifest.reused_vectors == len(retriever) > 150
    # Queries still encode (encode_query) and the dense side finds the topic.
    hits = retriever.search("What are the symptoms of glaucoma?", 5, mode="dense")
    assert hits


def _tiny_artifact(path: Path, texts: list[str], embedder: Embedder) -> None:
    keys = list(dict.fromkeys(text_key(t) for t in texts))
    by_key = {text_key(t): t for t in texts}
    vecs = embedder.encode([by_key[k] for k in keys])
    params = ChunkingParams()
    header = ArtifactHeader(
        model="all-MiniLM-L6-v2",
        max_seq_length=embedder.max_seq_length,
        dimension=embedder.dimension,
        chunk_max_words=params.max_words,
        chunk_overlap_sentences=params.overlap_sentences,
        n_vectors=len(keys),
        n_chunks=len(texts),
        corpus_hash=chunk_keys_hash([text_key(t) for t in texts]),
    )
    write_artifact(path, header, keys, vecs)


def _spy_encode(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = Embedder.encode

    def spy(self: Embedder, texts: list[str], **kwargs: object) -> np.ndarray:
        seen.extend(texts)
        return real(self, texts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Embedder, "encode", spy)
    return seen


def _notes(edit: str = "") -> list[dict[str, str]]:
    docs = [
        {"id": d.id, "title": d.title, "text": d.text, "source": "notes", "license": "CC-BY-4.0"}
        for d in medquad_documents(limit=6)
    ]
    docs[3]["text"] += edit
    return docs


def test_mismatch_embeds_only_the_changed_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval.corpus import documents_from_mappings

    embedder = get_embedder()
    artifact = tmp_path / "vectors.vec"
    original = chunk_documents(documents_from_mappings(_notes()))
    _tiny_artifact(artifact, [embedding_text(c) for c in original], embedder)

    seen = _spy_encode(monkeypatch)
    edited = _notes(" This sentence was added after the artifact was built.")
    retriever = build_or_load_index(
        tmp_path / "index", extra_documents=edited, include_medquad=False, artifact=artifact
    )
    changed = {embedding_text(c) for c in retriever.chunks} - {embedding_text(c) for c in original}
    assert changed and set(seen) == changed  # only the edited document's changed chunk(s)
    assert retriever.manifest.embedded_vectors == len(seen)
    assert retriever.manifest.reused_vectors == len(retriever) - len(seen)

    # Without any artifact, the index being replaced supplies the unchanged vectors; run as
    # the app's background build does (own thread, one torch thread, lower priority).
    seen.clear()
    with ThreadPoolExecutor(1) as pool:
        again = pool.submit(
            build_or_load_index,
            tmp_path / "index",
            extra_documents=_notes(" Another edit."),
            include_medquad=False,
            artifact=None,
            background=True,
        ).result()
    assert 0 < len(seen) < len(again)
    # The reused vectors are the ones the model would give (quantised: cosine ~1).
    fresh = embedder.encode([embedding_text(c) for c in again.chunks[:4]])
    stored = again.vectors.reconstruct_n(0, 4)
    assert float((fresh * stored).sum(axis=1).min()) > 0.995


def test_progress_is_monotonic_and_ends_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder_module, "EMBED_BATCH", 4)
    snaps: list[IndexProgress] = []
    build_or_load_index(
        tmp_path / "index",
        extra_documents=_notes(),
        include_medquad=False,
        artifact=None,
        on_progress=snaps.append,
    )
    embed = [s for s in snaps if s.stage == "embed"]
    assert len(embed) > 3
    assert len({s.total for s in embed}) == 1
    assert [s.done for s in embed] == sorted(s.done for s in embed)
    assert embed[-1].done == embed[-1].total
    assert all(s.eta_s is not None and s.rate_per_s for s in embed[1:])
    assert [s.elapsed_s for s in snaps] == sorted(s.elapsed_s for s in snaps)
    assert snaps[-1].stage == "ready" and snaps[-1].done == snaps[-1].total > 0
    # A second call loads: one "ready" snapshot with nothing embedded.
    snaps.clear()
    build_or_load_index(
        tmp_path / "index",
        extra_documents=_notes(),
        include_medquad=False,
        artifact=None,
        on_progress=snaps.append,
    )
    assert snaps[-1].stage == "ready" and snaps[-1].to_embed == 0 and "loaded" in snaps[-1].message


def test_quantised_search_matches_float_search() -> None:
    """Top results over int8 vectors agree with float32 ones on sample queries."""
    import faiss

    embedder = get_embedder()
    chunks = chunk_documents(medquad_documents(limit=60))
    floats = embedder.encode([embedding_text(c) for c in chunks])
    codes, scales = quantize(floats)
    approx = dequantize(codes, scales)
    assert float((floats * approx).sum(axis=1).min()) > 0.999
    queries = [
        "What are the symptoms of diabetes?",
        "How is high blood pressure treated?",
        "What causes anemia?",
        "Is this condition inherited?",
        "How many people are affected?",
        "What is the outlook for children with this disease?",
    ]
    q = embedder.encode(queries)
    exact, approx_index = faiss.IndexFlatIP(q.shape[1]), faiss.IndexFlatIP(q.shape[1])
    exact.add(floats)
    approx_index.add(approx)
    _, top_exact = exact.search(q, 10)
    _, top_approx = approx_index.search(q, 10)
    overlap = [len(set(a[:5]) & set(b[:5])) / 5 for a, b in zip(top_exact, top_approx, strict=True)]
    assert np.mean(overlap) >= 0.9
    assert sum(a[0] == b[0] for a, b in zip(top_exact, top_approx, strict=True)) >= len(queries) - 1


def test_artifact_bytes_depend_only_on_content(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    keys = [text_key(f"text {i}") for i in range(50)]
    header = ArtifactHeader("m", 128, 8, 180, 1, 50, 50, "h")
    write_artifact(tmp_path / "a.vec", header, keys, vecs)
    order = rng.permutation(50)
    write_artifact(tmp_path / "b.vec", header, [keys[i] for i in order], vecs[order])
    a, b = (hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.vec", "b.vec"))
    assert a == b
    found, back = VectorArtifact.read(tmp_path / "a.vec").lookup([keys[3], text_key("absent")])
    assert found.tolist() == [True, False]
    assert float(back[0] @ vecs[3]) > 0.999
