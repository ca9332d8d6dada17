"""The simulated-patient generator: deterministic, valid, plausible, in the official format."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from eval.ddx.generator import (
    CLINICAL_PROFILE,
    SHIPPED_PATIENTS,
    STRESS_PROFILE,
    VALUED_PROFILE,
    generate_patients,
)
from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.records import Patient, read_patients, split_evidence, write_patients


def test_same_seed_same_patients_other_seed_differs(ddx_definitions: DDXPlusDefinitions) -> None:
    a = generate_patients(ddx_definitions, per_condition=3, seed=7)
    b = generate_patients(ddx_definitions, per_condition=3, seed=7)
    c = generate_patients(ddx_definitions, per_condition=3, seed=8)
    assert a == b
    assert [p.evidences for p in a] != [p.evidences for p in c]


def test_patients_are_valid(ddx_definitions: DDXPlusDefinitions) -> None:
    defs = ddx_definitions
    patients = generate_patients(defs, per_condition=5, seed=1)
    assert len(patients) == 5 * 49
    assert {p.pathology for p in patients} == set(defs.conditions)
    for patient in patients:
        cond = defs.conditions[patient.pathology]
        values = patient.evidence_values()
        for base, vals in values.items():
            ev = defs.evidences[base]  # every evidence exists
            if ev.data_type == "B":
                assert vals == []
            else:
                assert vals and set(vals) <= set(ev.possible_values), (base, vals)
                if ev.data_type == "C":
                    assert len(vals) == 1
            head = ev.code_question
            # (some group heads, e.g. E_122, are not evidences themselves)
            assert head == base or head not in defs.evidences or head in values, f"{base} without {head}"
        initial = defs.evidences[patient.initial_evidence]
        assert initial.data_type == "B" and not initial.is_antecedent
        assert patient.initial_evidence in cond.symptoms and patient.initial_evidence in values
        # A subset: never every evidence of a rich condition, and mostly the condition's own.
        own = set(cond.evidences)
        assert len(set(values) - own) <= 1
        assert abs(sum(p for _, p in patient.differential) - 1.0) < 1e-3
        assert all(defs.condition(name) for name, _ in patient.differential)
        assert 0 <= patient.age <= 110 and patient.sex in ("M", "F")
        if {"E_167", "E_145"} & set(values):
            assert patient.sex == "F"


def test_subsets_are_partial_and_differentials_plausible(ddx_definitions: DDXPlusDefinitions) -> None:
    patients = generate_patients(ddx_definitions, per_condition=10, seed=0)
    coverage = [
        len(set(p.evidence_values()) & set(ddx_definitions.conditions[p.pathology].evidences))
        / len(ddx_definitions.conditions[p.pathology].evidences)
        for p in patients
    ]
    assert 0.4 < statistics.mean(coverage) < 0.9
    assert statistics.mean(len(p.differential) for p in patients) > 2
    in_ddx = sum(p.pathology in dict(p.differential) for p in patients) / len(patients)
    assert in_ddx > 0.9
    paediatric = [p.age for p in patients if p.pathology == "Bronchiolitis"]
    assert max(paediatric) <= 2


def test_shipped_file_is_what_the_generator_makes(
    ddx_definitions: DDXPlusDefinitions, tmp_path: Path
) -> None:
    shipped = read_patients(SHIPPED_PATIENTS)
    assert len(shipped) == 490
    again = generate_patients(ddx_definitions, per_condition=10, seed=0, profile=CLINICAL_PROFILE)
    write_patients(tmp_path / "again.csv", again)
    assert (tmp_path / "again.csv").read_text() == SHIPPED_PATIENTS.read_text()
    # Round-robin order: the first 49 rows cover every condition (so --limit N is diverse).
    assert len({p.pathology for p in shipped[:49]}) == 49
    assert all(split_evidence(p.initial_evidence)[1] is None for p in shipped)


def test_stress_profile_adds_incidental_symptoms_and_wider_rates(ddx_definitions: DDXPlusDefinitions) -> None:
    defs = ddx_definitions
    default = generate_patients(defs, per_condition=10, seed=3)
    stress = generate_patients(defs, per_condition=10, seed=3, profile=STRESS_PROFILE)

    def foreign_symptoms(patients: list[Patient]) -> int:
        return sum(
            any(
                e not in defs.conditions[p.pathology].evidences and not defs.evidences[e].is_antecedent
                for e in p.evidence_values()
            )
            for p in patients
        )

    assert foreign_symptoms(default) == 0
    assert 0.1 < foreign_symptoms(stress) / len(stress) < 0.3
    for p in stress:  # the opening complaint is still the condition's own symptom
        assert p.initial_evidence in defs.conditions[p.pathology].symptoms


def test_valued_profile_draws_condition_specific_values(ddx_definitions: DDXPlusDefinitions) -> None:
    """The typical values belong to the condition (same for every seed), so records of one
    seed teach what patients of another show; the default profile stays uniform."""

    def locations(patients: list[Patient]) -> Counter[str]:
        return Counter(
            v
            for p in patients
            if p.pathology == "Acute laryngitis"
            for v in p.evidence_values().get("E_55", [])
            if not ddx_definitions.is_default("E_55", v)
        )

    train = locations(generate_patients(ddx_definitions, per_condition=40, seed=1, profile=VALUED_PROFILE))
    test = locations(generate_patients(ddx_definitions, per_condition=40, seed=2, profile=VALUED_PROFILE))
    uniform = locations(generate_patients(ddx_definitions, per_condition=40, seed=1))
    typical = {v for v, _ in train.most_common(3)}
    assert typical == {v for v, _ in test.most_common(3)}
    assert sum(test[v] for v in typical) / sum(test.values()) > 0.6
    assert sum(uniform[v] for v in typical) / sum(uniform.values()) < 0.2
