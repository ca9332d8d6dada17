"""The guard keeps evaluation material out of the index.

The fingerprint tests run on the benchmark rows shipped in tests/fixtures/data/benchmarks, and
again on the full dev files in ../shared/data/benchmarks when that optional data is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval import BenchmarkGuard, Document, EvaluationMaterialError, build_or_load_index
from retrieval.corpus import medquad_documents


@pytest.fixture(scope="module")
def benchmark_dir(any_benchmarks: Path) -> Path:
    return any_benchmarks


@pytest.fixture(scope="module")
def guard(benchmark_dir: Path) -> BenchmarkGuard:
    return BenchmarkGuard.from_benchmark_dir(benchmark_dir)


def _first_jsonl(path: Path) -> dict[str, object]:
    with path.open() as fh:
        for line in fh:
            item = json.loads(line)
            if item.get("label_rationale") or "medmcqa" not in str(path):
                return item  # type: ignore[no-any-return]
    raise AssertionError(path)


@pytest.mark.parametrize("source", ["pubmedqa", "MedMCQA", "medqa-usmle", "mmlu_medical", "benchmark"])
def test_benchmark_source_tags_are_refused(source: str) -> None:
    doc = Document(id="x:1", text="Some text about aspirin and headache.", source=source)
    assert BenchmarkGuard.tags_only().reason(doc) is not None


def test_tagged_documents_abort_the_build(tmp_path: Path) -> None:
    bad = {"id": "pubmedqa:123", "title": "t", "text": "A context about statins.", "source": "pubmedqa"}
    with pytest.raises(EvaluationMaterialError, match="pubmedqa"):
        build_or_load_index(tmp_path / "idx", extra_documents=[bad], include_medquad=False)
    assert not (tmp_path / "idx").exists()


def test_copied_benchmark_text_is_detected(guard: BenchmarkGuard, benchmark_dir: Path) -> None:
    pubmed = json.loads((benchmark_dir / "pubmedqa" / "dev_pqal.json").read_text())
    context = next(iter(pubmed.values()))["CONTEXTS"][0]
    explanation = str(_first_jsonl(benchmark_dir / "medmcqa" / "dev.jsonl")["label_rationale"])
    question = str(_first_jsonl(benchmark_dir / "medqa" / "dev.jsonl")["question"])
    mmlu = str(_first_jsonl(benchmark_dir / "mmlu_medical" / "test.jsonl")["question"])
    for i, text in enumerate([context, explanation, question, mmlu]):
        # innocent-looking source, and the copy embedded in other prose
        doc = Document(id=f"notes:{i}", text=f"Clinical note. {text} End of note.", source="notes")
        assert guard.reason(doc) is not None, text[:80]


def test_shipped_medquad_passes_the_fingerprint_screen(guard: BenchmarkGuard) -> None:
    docs = medquad_documents(limit=1_500)
    _, rejected = guard.partition(docs)
    assert rejected == []


def test_ordinary_medical_prose_passes(guard: BenchmarkGuard) -> None:
    doc = Document(
        id="notes:ok",
        text="Asthma is a chronic disease of the airways. It causes wheezing, coughing and chest "
        "tightness, often at night or early in the morning, and inhalers relieve the symptoms.",
        source="notes",
    )
    assert guard.reason(doc) is None


@pytest.mark.integration
def test_build_leaves_out_copies_and_lists_them(tmp_path: Path, benchmark_dir: Path) -> None:
    pubmed = json.loads((benchmark_dir / "pubmedqa" / "dev_pqal.json").read_text())
    context = " ".join(next(iter(pubmed.values()))["CONTEXTS"])
    docs = [
        {"id": "notes:copy", "title": "copy", "text": context, "source": "notes"},
        {
            "id": "notes:ok",
            "title": "Gout",
            "text": "Gout is arthritis caused by uric acid crystals.",
            "source": "notes",
        },
    ]
    retriever = build_or_load_index(
        tmp_path / "idx", extra_documents=docs, include_medquad=False, benchmark_dir=benchmark_dir
    )
    assert {c.doc_id for c in retriever.chunks} == {"notes:ok"}
    assert len(retriever.manifest.excluded) == 1 and retriever.manifest.excluded[0].startswith("notes:copy")
