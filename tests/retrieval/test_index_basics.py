"""The shared ``retriever`` fixture: a real FAISS + BM25 index on disk."""

from __future__ import annotations

import pytest

from retrieval import HybridRetriever, Passage, Retriever, build_or_load_index

pytestmark = pytest.mark.integration

ABSURD_QUERIES = ["", "   \n\t ", "?!.,;:-()[]", "😀🩺💊", "\u200b\u200b", "___"]


def test_fixture_is_a_retriever(retriever: HybridRetriever) -> None:
    assert isinstance(retriever, Retriever)
    assert 300 <= len(retriever) <= 3000
    assert retriever.manifest.index_kind == "flat"
    assert retriever.index_dir is not None
    assert (retriever.index_dir / "dense.faiss").is_file()


@pytest.mark.parametrize("query", ABSURD_QUERIES)
def test_empty_and_meaningless_queries_give_nothing(retriever: HybridRetriever, query: str) -> None:
    for mode in ("hybrid", "dense", "bm25"):
        assert retriever.search(query, 5, mode=mode) == []


def test_huge_query_is_bounded(retriever: HybridRetriever) -> None:
    query = "symptoms of diabetes " * 5000  # 100k characters
    passages = retriever.search(query, 5)
    assert 1 <= len(passages) <= 5


def test_non_positive_k_gives_nothing(retriever: HybridRetriever) -> None:
    assert retriever.search("asthma", 0) == []
    assert retriever.search("asthma", -3) == []


def test_passages_carry_metadata(retriever: HybridRetriever) -> None:
    passages = retriever.search("What are the symptoms of high blood pressure?", 5)
    assert len(passages) == 5
    assert all(isinstance(p, Passage) for p in passages)
    assert len({p.id for p in passages}) == 5
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    for p in passages:
        assert p.text and p.source
        assert p.metadata["doc_id"] in p.id
        if p.source == "medquad":
            assert p.license == "CC-BY-4.0"
            assert p.url and p.url.startswith("http")


def test_filters_restrict_results(retriever: HybridRetriever) -> None:
    sources = {c.source for c in retriever.chunks}
    for source in sources:
        passages = retriever.search("pain and fever", 5, filters={"source": source})
        assert passages, source
        assert {p.source for p in passages} == {source}
    collection = retriever.chunks[0].metadata["collection"]
    got = retriever.search("treatment", 10, filters={"source": "medquad", "collection": collection})
    assert got and all(p.metadata["collection"] == collection for p in got)
    assert retriever.search("treatment", 5, filters={"source": "no-such-source"}) == []
    assert retriever.search("treatment", 5, filters={"no_such_key": "x"}) == []


def test_reload_from_disk_gives_identical_results(retriever: HybridRetriever) -> None:
    assert retriever.index_dir is not None
    again = HybridRetriever.load(retriever.index_dir, retriever.embedder)
    for query in ("genetic changes related to cystic fibrosis", "how to prevent flu", "kidney stones"):
        for mode in ("hybrid", "dense", "bm25"):
            first = retriever.search(query, 10, mode=mode)
            second = again.search(query, 10, mode=mode)
            assert [p.id for p in first] == [p.id for p in second]
            assert [p.score for p in first] == pytest.approx([p.score for p in second], abs=1e-5)


def test_build_or_load_reuses_matching_index(retriever: HybridRetriever) -> None:
    from tests.fixtures.retrieval import FIXTURE_MEDQUAD_PAIRS, fixture_kg_documents

    assert retriever.index_dir is not None
    before = (retriever.index_dir / "manifest.json").stat().st_mtime_ns
    loaded = build_or_load_index(
        retriever.index_dir, limit=FIXTURE_MEDQUAD_PAIRS, extra_documents=fixture_kg_documents()
    )
    assert (retriever.index_dir / "manifest.json").stat().st_mtime_ns == before
    assert loaded.manifest == retriever.manifest
