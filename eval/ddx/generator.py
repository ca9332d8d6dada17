"""Simulated DDXPlus-style patients generated from the condition definitions (seeded).

DDXPlus's own patients come from a proprietary knowledge base with per-evidence probabilities
that are not public; the released `release_conditions.json` only lists which symptoms and
antecedents belong to each condition. So this generator makes explicit, documented choices:

- each of the condition's symptoms is kept with a per-patient rate drawn from U(0.45, 0.9),
  each antecedent with a rate from U(0.2, 0.6) (DDXPlus patients show ~10 symptoms and ~3.5
  antecedents on average, never all of them); at least one binary symptom is kept;
- a member of a question group (e.g. pain location E_55 under pain E_53) pulls in its group
  head, and a kept head gets the group's categorical members with values, as DDXPlus does;
- categorical / multi-choice values are drawn uniformly among the allowed non-default values
  (1-3 values for multi-choice); 0-10 scales between 1 and 10; a group member with a default
  value (e.g. pain radiating "nowhere") keeps that default 30% of the time, meaning absent;
- with probability 0.25 one antecedent of another condition is added (unrelated history);
- all rates are a ``GeneratorProfile``; ``STRESS_PROFILE`` widens them and adds a symptom of
  another condition to 20% of patients (an incidental complaint), to check that a policy is
  not tuned to the default profile;
- age: a condition-specific range for the paediatric conditions, else 16-85; sex 50/50 unless
  a female-only evidence (pregnancy, menstruation, breastfeeding) was kept;
- INITIAL_EVIDENCE: one of the kept binary symptoms, uniformly (as in DDXPlus);
- DIFFERENTIAL_DIAGNOSIS: a simple noisy-naive-Bayes over the 49 conditions with the patient's
  base evidences (p = 0.5 for a condition's own evidence, 0.25 otherwise, absent evidences of
  the condition counted with 1 - p); pathologies with probability >= 0.01 are kept, at most 10.

Caveat: the simulator knows exactly the evidence-condition links the graph's DDXPlus part was
built from, so systems scored on these patients can look better than on the official test set.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from kg.ddxplus.definitions import ConditionDef, DDXPlusDefinitions, EvidenceDef
from kg.ddxplus.records import VALUE_SEPARATOR, Patient
from kg.sources import curated_values

# Paediatric conditions: (min age, max age). Everything else: 16-85.
AGE_RANGES: dict[str, tuple[int, int]] = {
    "Croup": (0, 6),
    "Bronchiolitis": (0, 2),
    "Acute otitis media": (1, 12),
    "Whooping cough": (0, 14),
    "Epiglottitis": (2, 12),
}
DEFAULT_AGE_RANGE = (16, 85)
SHIPPED_PATIENTS = Path(__file__).resolve().parent / "data" / "simulated_patients.csv"
FEMALE_ONLY_EVIDENCES = frozenset({"E_145", "E_167", "E_141", "E_11"})
DEFAULT_VALUE_RATE = 0.3


@dataclass(frozen=True)
class GeneratorProfile:
    """How many of its condition's evidences a patient shows, and how much unrelated noise."""

    symptom_rate: tuple[float, float] = (0.45, 0.9)  # per-patient rate ~ U(low, high)
    antecedent_rate: tuple[float, float] = (0.2, 0.6)
    foreign_antecedent: float = 0.25  # P(one antecedent of another condition)
    foreign_symptom: float = 0.0  # P(one binary symptom of another condition)
    # P(a value is drawn from the condition's few typical values, e.g. its pain locations)
    # rather than uniformly; the typical values are fixed per condition (not per seed).
    typical_values: float = 0.0
    # Typical values from medkg's curated clinical table (kg/data/value_knowledge.tsv), drawn by
    # their curated p, instead of a fixed random draw; uniform where the table is silent.
    curated_values: bool = False


DEFAULT_PROFILE = GeneratorProfile()
STRESS_PROFILE = GeneratorProfile(
    symptom_rate=(0.3, 1.0), antecedent_rate=(0.1, 0.7), foreign_antecedent=0.5, foreign_symptom=0.2
)
# Values that depend on the condition, as in DDXPlus's own knowledge base (whose distributions
# are not public): for calibration experiments, where they can be learned from records.
VALUED_PROFILE = GeneratorProfile(typical_values=0.8)
# Values as a clinician would expect them (pharyngitis: pain in the throat), from the curated
# table, which the graph's DDXPlus training statistics never read: a cross-source check.
CLINICAL_PROFILE = GeneratorProfile(typical_values=0.9, curated_values=True)
PROFILES = {
    "default": DEFAULT_PROFILE,
    "stress": STRESS_PROFILE,
    "valued": VALUED_PROFILE,
    "clinical": CLINICAL_PROFILE,
}
TYPICAL_VALUES = 3
DIFFERENTIAL_P_LINKED = 0.5
DIFFERENTIAL_LEAK = 0.25
DIFFERENTIAL_MIN_PROBABILITY = 0.01
DIFFERENTIAL_MAX_SIZE = 10


def _typical_values(condition: str, ev: EvidenceDef, choices: list[str]) -> list[str]:
    """The condition's typical values of an evidence: a fixed draw, the same for every seed."""
    return random.Random(f"typical:{condition}:{ev.id}").sample(choices, min(TYPICAL_VALUES, len(choices)))


@cache
def _curated_levels() -> dict[tuple[str, str], list[tuple[str, float]]]:
    """(DDXPlus condition, evidence) -> [(value, p)] from the curated value table."""
    table: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for row in curated_values():
        table.setdefault((row.condition, row.evidence), []).extend(row.levels())
    return table


def _curated_tokens(ev: EvidenceDef, rng: random.Random, condition: str) -> list[str] | None:
    """Values drawn by their curated p: one for a single-choice evidence or a scale, each value
    with its own p for a multi-choice one (at least one). None where the table is silent."""
    levels = _curated_levels().get((condition, ev.id))
    if not levels:
        return None
    codes, weights = [c for c, _ in levels], [p for _, p in levels]
    if ev.data_type == "M":
        chosen = [c for c, p in levels if rng.random() < p] or rng.choices(codes, weights)
    else:
        chosen = rng.choices(codes, weights)
    return [f"{ev.id}{VALUE_SEPARATOR}{v}" for v in sorted(set(chosen))]


def _value_tokens(
    ev: EvidenceDef,
    rng: random.Random,
    condition: str = "",
    typical_rate: float = 0.0,
    curated: bool = False,
) -> list[str]:
    """The ``E_xx_@_value`` tokens of one kept non-binary evidence."""
    if curated and typical_rate and rng.random() < typical_rate:
        tokens = _curated_tokens(ev, rng, condition)
        if tokens is not None:
            return tokens
    if ev.is_scale:
        return [f"{ev.id}{VALUE_SEPARATOR}{rng.randint(1, 10)}"]
    if ev.default_value is not None and ev.code_question != ev.id and rng.random() < DEFAULT_VALUE_RATE:
        # e.g. "the pain radiates nowhere": DDXPlus writes the default value, meaning absent.
        return [f"{ev.id}{VALUE_SEPARATOR}{ev.default_value}"]
    choices = [v for v in ev.possible_values if v != ev.default_value]
    if not choices:
        return []
    count = 1 if ev.data_type == "C" else min(len(choices), rng.choice((1, 1, 2, 3)))
    if typical_rate and rng.random() < typical_rate:
        choices = _typical_values(condition, ev, choices)
        count = min(count, len(choices))
    return [f"{ev.id}{VALUE_SEPARATOR}{v}" for v in sorted(rng.sample(choices, count))]


def _group_members(defs: DDXPlusDefinitions) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for ev in defs.evidences.values():
        if ev.code_question != ev.id:
            groups.setdefault(ev.code_question, []).append(ev.id)
    return groups


def _differential(defs: DDXPlusDefinitions, present: set[str]) -> list[tuple[str, float]]:
    logs: dict[str, float] = {}
    for cond in defs.conditions.values():
        own = set(cond.evidences)
        score = 0.0
        for ev in sorted(present):  # a fixed order: float sums must not depend on set hashing
            score += math.log(DIFFERENTIAL_P_LINKED if ev in own else DIFFERENTIAL_LEAK)
        score += len(own - present) * math.log(1 - DIFFERENTIAL_P_LINKED)
        logs[cond.name] = score
    top = max(logs.values())
    weights = {name: math.exp(score - top) for name, score in logs.items()}
    total = sum(weights.values())
    ranked = sorted(((name, w / total) for name, w in weights.items()), key=lambda p: (-p[1], p[0]))
    kept = [(n, p) for n, p in ranked if p >= DIFFERENTIAL_MIN_PROBABILITY][:DIFFERENTIAL_MAX_SIZE]
    mass = sum(p for _, p in kept)
    return [(n, round(p / mass, 6)) for n, p in kept]


def generate_patient(
    cond: ConditionDef,
    defs: DDXPlusDefinitions,
    rng: random.Random,
    patient_id: str,
    profile: GeneratorProfile = DEFAULT_PROFILE,
) -> Patient:
    groups = _group_members(defs)
    symptom_rate = rng.uniform(*profile.symptom_rate)
    antecedent_rate = rng.uniform(*profile.antecedent_rate)
    kept = {e for e in cond.symptoms if rng.random() < symptom_rate}
    kept |= {e for e in cond.antecedents if rng.random() < antecedent_rate}
    binary_symptoms = [
        e for e in cond.symptoms if defs.evidences[e].data_type == "B" and not defs.evidences[e].is_antecedent
    ]
    if not any(e in kept for e in binary_symptoms):
        kept.add(rng.choice(binary_symptoms))
    if rng.random() < profile.foreign_antecedent:
        others = sorted(
            {a for c in defs.conditions.values() if c.name != cond.name for a in c.antecedents}
            - set(cond.evidences)
        )
        kept.add(rng.choice(others))
    if profile.foreign_symptom and rng.random() < profile.foreign_symptom:
        foreign = sorted(
            {
                s
                for c in defs.conditions.values()
                for s in c.symptoms
                if defs.evidences[s].data_type == "B" and not defs.evidences[s].is_antecedent
            }
            - set(cond.evidences)
        )
        kept.add(rng.choice(foreign))
    # Group consistency: a member needs its head; a kept head brings its members of this condition.
    for ev_id in list(kept):
        head = defs.evidences[ev_id].code_question
        if head != ev_id and head in defs.evidences:
            kept.add(head)
    for head in list(kept):
        kept |= {m for m in groups.get(head, []) if m in cond.evidences}

    tokens: list[str] = []
    for ev_id in sorted(kept, key=_evidence_sort_key):
        ev = defs.evidences[ev_id]
        if ev.data_type == "B":
            tokens.append(ev_id)
        else:
            tokens.extend(_value_tokens(ev, rng, cond.name, profile.typical_values, profile.curated_values))
    present = set()
    for token in tokens:
        base, _, value = token.partition(VALUE_SEPARATOR)
        if not defs.is_default(base, value or None):
            present.add(base)
    initial = rng.choice(sorted((e for e in binary_symptoms if e in present), key=_evidence_sort_key))
    low, high = AGE_RANGES.get(cond.name, DEFAULT_AGE_RANGE)
    sex = "F" if present & FEMALE_ONLY_EVIDENCES else rng.choice(("M", "F"))
    return Patient(
        id=patient_id,
        age=rng.randint(low, high),
        sex=sex,  # type: ignore[arg-type]
        pathology=cond.name,
        evidences=tuple(tokens),
        initial_evidence=initial,
        differential=tuple(_differential(defs, present)),
    )


def _evidence_sort_key(ev_id: str) -> tuple[int, str]:
    number = ev_id.removeprefix("E_")
    return (int(number), ev_id) if number.isdigit() else (10**9, ev_id)


def generate_patients(
    defs: DDXPlusDefinitions,
    per_condition: int = 10,
    seed: int = 0,
    conditions: Sequence[str] | None = None,
    profile: GeneratorProfile = DEFAULT_PROFILE,
) -> list[Patient]:
    """``per_condition`` patients for each condition (all 49 by default), reproducible by seed.

    Patients are interleaved across conditions (round-robin), so the first N rows of the
    written file (``--limit N``) cover as many conditions as possible."""
    names = sorted(conditions or defs.conditions)
    # One stream per condition, so adding conditions does not change the others' patients.
    rngs = {name: random.Random(f"{seed}:{name}") for name in names}
    patients: list[Patient] = []
    for _ in range(per_condition):
        for name in names:
            patient = generate_patient(
                defs.conditions[name], defs, rngs[name], f"sim-{len(patients) + 1:04d}", profile
            )
            patients.append(patient)
    return patients


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m eval.ddx.generator``: regenerate the shipped simulated patients (profile
    "clinical": values drawn from the curated clinical table)."""
    import argparse

    from kg.ddxplus.definitions import load_definitions
    from kg.ddxplus.records import write_patients

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-condition", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="clinical")
    parser.add_argument("--out", default=str(SHIPPED_PATIENTS))
    args = parser.parse_args(argv)
    patients = generate_patients(
        load_definitions(), args.per_condition, args.seed, profile=PROFILES[args.profile]
    )
    count = write_patients(args.out, patients)
    print(f"wrote {count} patients to {args.out}")


if __name__ == "__main__":
    main()
