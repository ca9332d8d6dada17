"""Retrieval quality on MedQuAD: does a question retrieve its own answer?

MedQuAD questions are not indexed (only answers are), so each question is an honest query
whose relevant document is known. Used by the tests and ``bench/retrieval.py``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.corpus import answer_key, canonical_doc_ids, load_medquad_records, sample_stratified
from retrieval.hybrid import HybridRetriever, Mode


@dataclass(frozen=True)
class QuestionCase:
    question: str
    doc_id: str  # the indexed document holding this question's answer


def medquad_cases(limit: int | None, *, every: int = 4, offset: int = 1) -> list[QuestionCase]:
    """Held-aside questions for an index built with the same MedQuAD ``limit``.

    Takes every ``every``-th pair of the indexed subset (starting at ``offset``), so the sample
    spreads over all collections; no tuning in this package looked at these questions.
    """
    records = load_medquad_records()
    if limit is not None:
        records = sample_stratified(records, max(0, limit))
    owner = canonical_doc_ids(records)
    return [
        QuestionCase(rec["question"], owner[answer_key(rec["answer"])])
        for rec in records[offset::every]
        if rec["question"].strip()
    ]


@dataclass(frozen=True)
class RecallResult:
    mode: str
    n: int
    recall: dict[int, float]  # k -> share of questions whose answer is in the top k
    latencies_ms: list[float]


def recall_at_k(
    retriever: HybridRetriever,
    cases: Sequence[QuestionCase],
    mode: Mode,
    ks: Sequence[int] = (1, 5, 10),
) -> RecallResult:
    depth = max(ks)
    hits = dict.fromkeys(ks, 0)
    latencies = []
    for case in cases:
        started = time.perf_counter()
        passages = retriever.search(case.question, depth, mode=mode)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = [p.metadata.get("doc_id") for p in passages]
        for k in ks:
            if case.doc_id in ranked[:k]:
                hits[k] += 1
    n = max(len(cases), 1)
    return RecallResult(mode, len(cases), {k: hits[k] / n for k in ks}, latencies)
