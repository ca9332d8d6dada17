"""Evidence retrieval: MedQuAD + graph descriptions, dense (FAISS) + BM25 fused by reciprocal rank.

Entry points: :func:`build_or_load_index` (returns a :class:`HybridRetriever`, a ``Retriever``)
and the contract in :mod:`retrieval.base`.
"""

from retrieval.base import Passage, Retriever
from retrieval.builder import IndexNotBuiltError, build_or_load_index, load_index
from retrieval.corpus import Document
from retrieval.guard import BenchmarkGuard, EvaluationMaterialError
from retrieval.hybrid import HybridRetriever

__all__ = [
    "BenchmarkGuard",
    "Document",
    "EvaluationMaterialError",
    "HybridRetriever",
    "IndexNotBuiltError",
    "Passage",
    "Retriever",
    "build_or_load_index",
    "load_index",
]
