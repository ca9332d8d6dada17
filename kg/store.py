"""The ``GraphStore`` boundary: what the rest of medkg may ask of the knowledge graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from kg.models import (
    DEFAULT_MAX_QUESTIONS,
    DEFAULT_MIN_INFORMATION_GAIN,
    DEFAULT_POSTERIOR_THRESHOLD,
    Differential,
    DiseaseConcept,
    DiseaseFacts,
    Evidence,
    FindingConcept,
    GraphStats,
    NextStep,
)


class GraphError(RuntimeError):
    """The graph server is unreachable or a query failed (message says which and how to fix)."""


class UnknownFindingError(ValueError):
    """Evidence names finding ids the graph does not hold."""


@runtime_checkable
class GraphStore(Protocol):
    def ping(self) -> None:
        """Raise GraphError when the server does not answer."""

    def stats(self) -> GraphStats: ...

    def findings(self, ids: Sequence[str] | None = None) -> list[FindingConcept]:
        """All findings (the extraction lexicon) or the ones named."""

    def diseases(self, ids: Sequence[str] | None = None) -> list[DiseaseConcept]: ...

    def differential(self, evidence: Evidence, top_k: int = 10) -> Differential:
        """Rank candidate diseases by the noisy naive-Bayes posterior given the evidence."""

    def next_step(
        self,
        evidence: Evidence,
        differential: Differential,
        *,
        posterior_threshold: float = DEFAULT_POSTERIOR_THRESHOLD,
        min_information_gain: float = DEFAULT_MIN_INFORMATION_GAIN,
        max_questions: int = DEFAULT_MAX_QUESTIONS,
        top_candidates: int = 10,
    ) -> NextStep:
        """The question with the largest expected information gain, or why to stop."""

    def disease_facts(self, disease_ids: Sequence[str], max_findings: int = 8) -> list[DiseaseFacts]: ...

    def close(self) -> None: ...
