"""Run several inquiry policies on the same simulated patients and score them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eval.ddx.metrics import DEFAULT_CUTOFF, Outcome, PolicySummary, summarize
from eval.ddx.policies import Episode, InquiryConfig, Policy, timed
from eval.ddx.simulator import SimulatedPatient
from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.mapping import DiseaseMapper
from kg.ddxplus.records import Patient, PatientFileError, split_evidence

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]


@dataclass
class DdxRun:
    started: str
    config: dict[str, Any]
    summaries: dict[str, PolicySummary]
    episodes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    unmapped_conditions: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def check_patients(patients: Sequence[Patient], definitions: DDXPlusDefinitions) -> None:
    """Fail early, with the reason, on files this evaluation cannot simulate."""
    for patient in patients:
        base = split_evidence(patient.initial_evidence)[0]
        if base not in definitions.evidences:
            raise PatientFileError(
                f"patient {patient.id}: unknown evidence code {patient.initial_evidence!r}. "
                "Codes must be DDXPlus evidence ids: the English release's E_xx or the original "
                "French release's names (like 'fievre')."
            )


def evaluate(
    patients: Sequence[Patient],
    policies: Sequence[Policy],
    *,
    mapper: DiseaseMapper,
    definitions: DDXPlusDefinitions,
    finding_names: Mapping[str, str],
    config: InquiryConfig,
    cutoff: float = DEFAULT_CUTOFF,
    seed: int = 0,
    progress: Progress | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> DdxRun:
    check_patients(patients, definitions)
    started_wall = time.perf_counter()
    run = DdxRun(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        config={
            **config.record(),
            "cutoff": cutoff,
            "seed": seed,
            "patients": len(patients),
            "policies": [p.name for p in policies],
            **dict(extra_config or {}),
        },
        summaries={},
        unmapped_conditions=mapper.unmapped_conditions(),
    )
    usable: list[Patient] = []
    for patient in patients:
        cond = definitions.condition(patient.pathology)
        if cond is None:
            run.skipped.append({"patient": patient.id, "reason": f"unknown pathology {patient.pathology!r}"})
        else:
            usable.append(patient)
    outcomes: dict[str, list[Outcome]] = {p.name: [] for p in policies}
    total = len(usable) * len(policies)
    done = 0
    for patient in usable:
        cond = definitions.condition(patient.pathology)
        assert cond is not None
        truth = mapper.disease_id(patient.pathology)
        truth_ddx = frozenset(
            d for d in (mapper.disease_id(name) for name, p in patient.differential if p >= cutoff) if d
        )
        for policy in policies:
            simulated = SimulatedPatient(patient, definitions, finding_names)
            episode = timed(policy, simulated, config)
            outcomes[policy.name].append(
                Outcome(
                    patient_id=patient.id,
                    condition=cond.name,
                    truth=truth,
                    truth_differential=truth_ddx,
                    ranking=tuple(episode.ranking),
                    questions=episode.questions,
                    seconds=episode.seconds,
                    error=episode.error,
                )
            )
            run.episodes.append(_episode_record(episode, cond.name, truth, mapper))
            if episode.error:
                log.warning("policy %s failed on patient %s: %s", policy.name, patient.id, episode.error)
            done += 1
            if progress:
                progress(policy.name, done, total)
    run.summaries = {name: summarize(name, items, cutoff, seed) for name, items in outcomes.items()}
    run.wall_seconds = time.perf_counter() - started_wall
    return run


def _episode_record(
    episode: Episode, condition: str, truth: str | None, mapper: DiseaseMapper
) -> dict[str, Any]:
    ranking = [(disease_id, round(p, 4)) for disease_id, p in episode.ranking[:5]]
    return {
        "patient": episode.patient_id,
        "policy": episode.policy,
        "condition": condition,
        "truth": truth,
        "top": [{"id": d, "name": mapper.name(d), "p": p} for d, p in ranking],
        "correct_top1": bool(ranking) and ranking[0][0] == truth,
        "questions": episode.questions,
        "asked": episode.asked,
        "answers": episode.answers,
        "stop": episode.stop_reason,
        "seconds": round(episode.seconds, 4),
        "error": episode.error,
    }
