"""Unit tests of the pure parts: chunking, fusion, tokenizer, query normalisation, manifest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from retrieval.chunking import ChunkingParams, chunk_document, chunk_documents
from retrieval.corpus import Document, load_medquad_records, medquad_documents, sample_stratified
from retrieval.dense import build_index, choose_index_kind, search
from retrieval.hybrid import normalise_query, rrf_fuse
from retrieval.lexical import BM25Index, tokenize
from retrieval.manifest import IndexManifest, corpus_checksum

LONG_TEXT = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(120))


def _doc(text: str = LONG_TEXT, doc_id: str = "test:1") -> Document:
    return Document(id=doc_id, text=text, title="Topic", source="test", url="https://x", license="CC0")


def test_chunks_respect_size_and_cover_text() -> None:
    params = ChunkingParams(max_words=60, overlap_sentences=1)
    chunks = chunk_document(_doc(), params)
    assert len(chunks) > 5
    assert all(len(c.text.split()) <= 60 for c in chunks)
    joined = " ".join(c.text for c in chunks)
    for i in range(120):  # every sentence lands in some chunk
        assert f"Sentence number {i} " in joined
    # one sentence of overlap between neighbours
    for left, right in itertools.pairwise(chunks):
        assert left.text.split(". ")[-1].rstrip(".") in right.text


def test_chunk_ids_are_stable_and_content_derived() -> None:
    a = chunk_document(_doc())
    b = chunk_document(_doc())
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    assert all(c.id.startswith("test:1#") for c in a)
    edited = chunk_document(_doc(LONG_TEXT.replace("topic 3", "topic three")))
    assert a[0].id == edited[0].id or a[0].text != edited[0].text
    assert {c.id for c in a} != {c.id for c in edited}


def test_chunk_metadata_is_inherited() -> None:
    chunk = chunk_document(_doc())[0]
    assert (chunk.title, chunk.source, chunk.url, chunk.license) == ("Topic", "test", "https://x", "CC0")


def test_overlong_sentence_is_cut() -> None:
    chunks = chunk_document(_doc("word " * 1000), ChunkingParams(max_words=100))
    assert len(chunks) == 10
    assert all(len(c.text.split()) == 100 for c in chunks)


def test_duplicate_document_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        chunk_documents([_doc(), _doc()])


def test_document_from_mapping_requires_id_and_text() -> None:
    with pytest.raises(ValueError):
        Document.from_mapping({"id": "x", "text": ""})
    doc = Document.from_mapping({"id": "x", "text": "t", "source": "s", "extra": 3})
    assert doc.metadata == {"extra": "3"}


def test_shipped_medquad_has_answers_and_unique_ids() -> None:
    records = load_medquad_records()
    assert len(records) > 16_000
    assert all(r["answer"].strip() and r["qid"] for r in records)
    docs = medquad_documents()
    assert len({d.id for d in docs}) == len(docs)
    assert all(d.license == "CC-BY-4.0" and d.source == "medquad" for d in docs)
    # questions are not part of the indexed text
    sample = records[:50]
    assert not any(r["question"] in d.text for r in sample for d in docs[:50] if len(r["question"]) > 30)


def test_stratified_sample_spreads_over_collections() -> None:
    records = load_medquad_records()
    sample = sample_stratified(records, 200)
    assert len(sample) == 200
    assert len({r["collection"] for r in sample}) >= 8


def test_rrf_rewards_agreement() -> None:
    fused = rrf_fuse([[1, 2, 3], [3, 1, 4]])
    rows = [row for row, _ in fused]
    assert rows[0] == 1  # ranks 1 and 2
    assert rows.index(3) < rows.index(2)  # in both lists beats first-list-only
    assert set(rows) == {1, 2, 3, 4}
    assert rrf_fuse([]) == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", None), ("   ", None), ("?!...", None), ("😀🩺", None), ("__", None), (None, None), ("flu", "flu")],
)
def test_normalise_query(query: object, expected: str | None) -> None:
    assert normalise_query(query) == expected


def test_normalise_query_bounds_length() -> None:
    out = normalise_query("a" * 100_000)
    assert out is not None and len(out) <= 2_000


def test_tokenizer_folds_plurals_and_drops_question_words() -> None:
    assert tokenize("What are the Symptoms of therapies?") == ["symptom", "therapy"]
    assert tokenize("diseases virus glass") == ["disease", "virus", "glass"]


def test_bm25_ranks_matching_text_first() -> None:
    texts = ["asthma causes wheezing", "diabetes raises blood sugar", "gout affects the big toe"]
    index = BM25Index.build(texts)
    scores, rows = index.search("blood sugar in diabetes", 3)
    assert rows[0] == 1 and scores[0] > 0
    assert len(index.search("zzzz qqqq", 3)[1]) == 0
    _, rows = index.search("asthma diabetes", 3, allowed=np.array([2]))
    assert rows.tolist() == []


def test_index_kind_follows_size() -> None:
    assert choose_index_kind(1_000) == "flat"
    assert choose_index_kind(500_000) == "hnsw"
    assert choose_index_kind(5_000_000) == "ivf"
    assert choose_index_kind(10, "hnsw") == "hnsw"
    with pytest.raises(ValueError):
        choose_index_kind(10, "bogus")


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_dense_filtered_search_is_exact_for_every_kind(kind: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((4_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = build_index(vectors, kind)  # type: ignore[arg-type]
    allowed = np.array([3, 50, 700, 2_500, 3_999])
    scores, rows = search(index, vectors[700], 3, allowed)
    assert rows[0] == 700 and scores[0] == pytest.approx(1.0, abs=1e-5)
    expected = allowed[np.argsort(-(vectors[allowed] @ vectors[700]))][:3]
    assert rows.tolist() == expected.tolist()


def test_manifest_mismatch_names_the_difference() -> None:
    docs = [_doc()]
    base = IndexManifest(
        corpus_checksum=corpus_checksum(docs, ChunkingParams()),
        n_documents=1,
        model="m",
        dimension=384,
        max_seq_length=128,
        index_kind="flat",
        chunk_max_words=180,
        chunk_overlap_sentences=1,
    )
    assert base.mismatch(base) == []
    other = base.model_copy(update={"model": "other", "dimension": 768})
    reasons = base.mismatch(other)
    assert any("model" in r for r in reasons) and any("dimension" in r for r in reasons)
    changed = corpus_checksum([_doc(LONG_TEXT + " More.")], ChunkingParams())
    assert changed != base.corpus_checksum
    assert corpus_checksum(docs, ChunkingParams(max_words=100)) != base.corpus_checksum
