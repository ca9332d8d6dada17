"""DDXPlus-paper metrics for one policy over a set of patients.

- GTPA@k: the ground-truth pathology is among the first k diseases of the final differential
  (GTPA@1 is top-1 accuracy).
- DDR / DDP / DDF1: recall, precision and F1 of the final differential's disease set against the
  patient's DIFFERENTIAL_DIAGNOSIS set, both cut at probability >= ``cutoff`` (default 0.01,
  the DDXPlus convention of dropping negligible pathologies); computed per patient, then averaged.
  Predicted diseases outside DDXPlus (the merged graph also holds SymCat conditions) count as
  false positives; reference pathologies the graph lacks cannot be recalled.
- Top-1 uncertainty: the binomial standard error and a seeded percentile bootstrap 95% interval.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_CUTOFF = 0.01
BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class Outcome:
    """What the metrics need from one episode (disease ids already mapped)."""

    patient_id: str
    condition: str
    truth: str | None  # graph id of the ground-truth pathology (None: graph lacks it)
    truth_differential: frozenset[str]
    ranking: tuple[tuple[str, float], ...]
    questions: int
    seconds: float = 0.0
    error: str | None = None


def gtpa_at_k(ranking: Sequence[tuple[str, float]], truth: str | None, k: int) -> bool:
    return truth is not None and truth in [disease for disease, _ in ranking[:k]]


def differential_scores(
    ranking: Sequence[tuple[str, float]], truth: frozenset[str] | set[str], cutoff: float = DEFAULT_CUTOFF
) -> tuple[float, float, float]:
    """(recall, precision, F1) of the predicted set against the reference set."""
    predicted = {disease for disease, p in ranking if p >= cutoff}
    hits = len(predicted & set(truth))
    recall = hits / len(truth) if truth else 0.0
    precision = hits / len(predicted) if predicted else 0.0
    f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return recall, precision, f1


def bootstrap_interval(
    values: Sequence[float], seed: int = 0, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float]:
    if not values:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(samples))
    return means[int(0.025 * samples)], means[min(samples - 1, int(0.975 * samples))]


@dataclass
class ConditionScore:
    n: int
    top1: float
    top3: float


@dataclass
class PolicySummary:
    policy: str
    n: int
    errors: int
    top1: float
    top3: float
    top5: float
    top1_se: float
    top1_ci95: tuple[float, float]
    mean_questions: float
    median_questions: float
    ddr: float
    ddp: float
    ddf1: float
    mean_seconds: float
    p95_seconds: float
    per_condition: dict[str, ConditionScore] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _p95(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def summarize(
    policy: str, outcomes: Sequence[Outcome], cutoff: float = DEFAULT_CUTOFF, seed: int = 0
) -> PolicySummary:
    """Errors count as misses (an empty differential), so a crashing policy cannot look better."""
    top1 = [float(gtpa_at_k(o.ranking, o.truth, 1)) for o in outcomes]
    top3 = [float(gtpa_at_k(o.ranking, o.truth, 3)) for o in outcomes]
    top5 = [float(gtpa_at_k(o.ranking, o.truth, 5)) for o in outcomes]
    scores = [differential_scores(o.ranking, o.truth_differential, cutoff) for o in outcomes]
    questions = [float(o.questions) for o in outcomes]
    seconds = [o.seconds for o in outcomes]
    n = len(outcomes)
    accuracy = _mean(top1)
    per_condition: dict[str, ConditionScore] = {}
    for condition in sorted({o.condition for o in outcomes}):
        idx = [i for i, o in enumerate(outcomes) if o.condition == condition]
        per_condition[condition] = ConditionScore(
            n=len(idx), top1=_mean([top1[i] for i in idx]), top3=_mean([top3[i] for i in idx])
        )
    return PolicySummary(
        policy=policy,
        n=n,
        errors=sum(o.error is not None for o in outcomes),
        top1=accuracy,
        top3=_mean(top3),
        top5=_mean(top5),
        top1_se=(accuracy * (1 - accuracy) / n) ** 0.5 if n else 0.0,
        top1_ci95=bootstrap_interval(top1, seed),
        mean_questions=_mean(questions),
        median_questions=statistics.median(questions) if questions else 0.0,
        ddr=_mean([s[0] for s in scores]),
        ddp=_mean([s[1] for s in scores]),
        ddf1=_mean([s[2] for s in scores]),
        mean_seconds=_mean(seconds),
        p95_seconds=_p95(seconds),
        per_condition=per_condition,
    )
