"""Counting shown evidences per condition from official-format records (unit, fake graph)."""

from __future__ import annotations

from pathlib import Path

from eval.ddx.generator import generate_patients
from kg.ddxplus.counting import count_conditions, shown_evidences
from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.mapping import DiseaseMapper
from kg.ddxplus.records import Patient, read_patients
from tests.fixtures.ddx import FakeDdxGraph


def test_default_values_do_not_count_as_shown(ddx_definitions: DDXPlusDefinitions) -> None:
    patient = Patient(
        id="p",
        age=40,
        sex="F",
        pathology="Pneumonia",
        evidences=("E_91", "E_204_@_V_10", "E_55_@_V_123", "E_55_@_V_89", "E_57_@_V_123"),
        initial_evidence="E_91",
        differential=(),
    )
    # travel V_10 ("N") and radiating "nowhere" are DDXPlus defaults: absent; one real location suffices.
    assert shown_evidences(patient, ddx_definitions) == {"E_91", "E_55", "E_55_@_V_89"}


def test_counts_per_condition_match_the_records(
    ddx_definitions: DDXPlusDefinitions, official_sample_csv: Path
) -> None:
    graph = FakeDdxGraph(ddx_definitions)
    mapper = DiseaseMapper(graph.diseases(), ddx_definitions)
    patients = read_patients(official_sample_csv) + generate_patients(
        ddx_definitions, per_condition=2, seed=4
    )
    unknown = Patient("x", 30, "M", "Not a condition", ("E_91",), "E_91", ())
    counted = count_conditions([*patients, unknown], mapper, ddx_definitions)
    assert counted.patients == len(patients) + 1
    assert counted.unmapped == {"Not a condition": 1}
    assert sum(c.patients for c in counted.counts) == len(patients)
    for count in counted.counts:
        own = [p for p in patients if mapper.disease_id(p.pathology) == count.disease_id]
        assert count.patients == len(own)
        for finding_id, k in count.findings.items():
            assert k == sum(finding_id in shown_evidences(p, ddx_definitions) for p in own)
