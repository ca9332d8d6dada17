"""The ``GraphStore`` boundary: what the rest of medkg may ask of the knowledge graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from kg.models import (
    Differential,
    DiseaseConcept,
    DiseaseFacts,
    Evidence,
    FindingConcept,
    GraphStats,
    NextStep,
    StopRule,
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
        self, evidence: Evidence, differential: Differential, rule: StopRule = StopRule()
    ) -> NextStep:
        """The question with the largest expected information gain, or why to stop by ``rule``
        (the answers already in ``evidence`` count against ``rule.max_questions``)."""

    def disease_facts(self, disease_ids: Sequence[str], max_findings: int = 8) -> list[DiseaseFacts]: ...

    def close(self) -> None: ...
