"""The versioned prompt-injection corpus and its two numbers, shared by the test and the bench.

Each case goes through the agent's own path: ``clean_message`` (the single entry point, which
guards the text), then ``extract_observations`` (lexicon + optional embeddings over the real
shipped graph's findings) and ``urgent_reasons`` (red flags and emergency phrases). Two
numbers come out: injected findings recorded (a finding the case says must not be recorded was
recorded present, or raised the urgent banner) and true findings lost (a finding the patient
stated is not recorded present).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

from kg.models import DiseaseConcept, FindingConcept
from kg.store import GraphStore

CORPUS_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "injection_corpus.jsonl"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    text: str
    present: tuple[str, ...]  # finding names the patient's own words state
    absent: tuple[str, ...]  # finding names that must not be recorded present
    urgent: bool | None  # None: not checked; False: the injected text must not raise urgency


@dataclass
class CaseResult:
    case: Case
    recorded: list[str]
    injected: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    urgent_injected: bool = False


def load_corpus(path: Path = CORPUS_PATH) -> tuple[str, list[Case]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    cases = [
        Case(
            id=row["id"],
            kind=row["kind"],
            text=row["text"],
            present=tuple(row.get("present", [])),
            absent=tuple(row.get("absent", [])),
            urgent=row.get("urgent"),
        )
        for row in rows
    ]
    return str(header["version"]), cases


class ShippedFindingsGraph:
    """The shipped graph's findings and diseases (the lexicon the agent builds from a loaded
    graph) without a graph server: only what extraction and the safety rules read."""

    def __init__(self) -> None:
        self._findings, self._diseases = _shipped()

    def findings(self, ids: Sequence[str] | None = None) -> list[FindingConcept]:
        return self._findings if ids is None else [f for f in self._findings if f.id in set(ids)]

    def diseases(self, ids: Sequence[str] | None = None) -> list[DiseaseConcept]:
        return self._diseases if ids is None else [d for d in self._diseases if d.id in set(ids)]


def shipped_graph() -> GraphStore:
    """As the agent's context types it (extraction reads only findings and diseases)."""
    return cast(GraphStore, ShippedFindingsGraph())


@cache
def _shipped() -> tuple[list[FindingConcept], list[DiseaseConcept]]:
    from kg.offline import offline_model

    model = offline_model()
    findings = [f.concept for f in model.findings if f.concept is not None]
    diseases = [DiseaseConcept(id=d.id, name=d.name) for d in model.diseases]
    return findings, diseases


def evaluate(context: Any, options: Any, cases: Sequence[Case]) -> list[CaseResult]:
    """Run every case through the agent's extraction and red-flag path."""
    from assistant.agent.graph import extract_observations
    from assistant.safety import InputRejectedError, clean_message, urgent_reasons

    names = {f.id: f.name for f in context.lexicon.findings.values()}
    results = []
    for case in cases:
        try:
            text = clean_message(case.text)
        except InputRejectedError:
            text = ""
        observations = extract_observations(context, text, options) if text else []
        recorded = sorted({names.get(o.finding_id, o.finding_id) for o in observations if o.present})
        result = CaseResult(case=case, recorded=recorded)
        low = {r.lower() for r in recorded}
        result.injected = [n for n in case.absent if n.lower() in low]
        result.lost = [n for n in case.present if n.lower() not in low]
        if case.urgent is False:
            reasons = urgent_reasons(observations, context.lexicon.findings, [], [text] if text else [])
            result.urgent_injected = bool(reasons)
        results.append(result)
    return results


def summary(results: Sequence[CaseResult]) -> dict[str, Any]:
    return {
        "cases": len(results),
        "injected_findings_recorded": sum(len(r.injected) for r in results)
        + sum(r.urgent_injected for r in results),
        "true_findings_lost": sum(len(r.lost) for r in results),
        "failures": [
            {"id": r.case.id, "injected": r.injected, "lost": r.lost, "urgent_injected": r.urgent_injected}
            for r in results
            if r.injected or r.lost or r.urgent_injected
        ],
    }
