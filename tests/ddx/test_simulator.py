"""The simulated patient's opening statement and answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.ddx.simulator import SimulatedPatient, statement_from_name, statement_from_question, typical_answer
from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.records import read_patients


def _urti(defs: DDXPlusDefinitions, csv: Path, names: dict[str, str] | None = None) -> SimulatedPatient:
    return SimulatedPatient(read_patients(csv)[0], defs, names)


def test_in_list_answers_yes_with_values(
    ddx_definitions: DDXPlusDefinitions, official_sample_csv: Path
) -> None:
    sim = _urti(ddx_definitions, official_sample_csv)
    fever = sim.answer("E_91")
    assert (fever.present, fever.text) == (True, "Yes.")
    location = sim.answer("E_55")
    assert location.present is True and location.values == ("V_89", "V_108", "V_167")
    assert location.text == "Yes: forehead, cheek(R), temple(L)."
    intensity = sim.answer("E_56")
    assert intensity.present is True and intensity.text.startswith("Yes, 4 ")
    assert sim.answer("E_56").observation().value == "4"


def test_default_values_and_out_of_list_answer_no(
    ddx_definitions: DDXPlusDefinitions, official_sample_csv: Path
) -> None:
    sim = _urti(ddx_definitions, official_sample_csv)
    # Listed with the default value: travelled nowhere ("N"), pain radiates nowhere.
    assert sim.answer("E_204").present is False
    assert sim.answer("E_57").present is False
    # A DDXPlus evidence the patient does not have.
    assert "E_66" not in sim.patient.evidence_values()
    no = sim.answer("E_66")
    assert (no.present, no.text) == (False, "No.")
    # A per-value finding id.
    assert sim.answer("E_55_@_V_89").present is True
    assert sim.answer("E_55_@_V_22").present is False


def test_findings_outside_ddxplus_get_dont_know(
    ddx_definitions: DDXPlusDefinitions, official_sample_csv: Path
) -> None:
    sim = _urti(ddx_definitions, official_sample_csv)
    for finding_id in ("symcat:itchy-eyelid", "doid:1234", "E_99999"):
        answer = sim.answer(finding_id)
        assert answer.present is None and "don't know" in answer.text
        assert answer.observation().present is None


def test_opening_uses_the_graph_name(ddx_definitions: DDXPlusDefinitions, official_sample_csv: Path) -> None:
    assert _urti(ddx_definitions, official_sample_csv, {"E_91": "Fever"}).opening() == "I have fever."
    fallback = _urti(ddx_definitions, official_sample_csv).opening()
    assert fallback.startswith("I have") and "fever" in fallback and not fallback.endswith("?")
    initial = _urti(ddx_definitions, official_sample_csv).initial_observation()
    assert (initial.finding_id, initial.present, initial.source) == ("E_91", True, "initial")


def test_statement_helpers() -> None:
    assert statement_from_name("COPD flare") == "I have COPD flare."
    assert statement_from_name("Shortness of breath") == "I have shortness of breath."
    assert statement_from_question("Are you pregnant?") == "I am pregnant."
    assert statement_from_question("Do you have pain in your chest?") == "I have pain in my chest."


def test_typical_answer_follows_the_whole_condition(ddx_definitions: DDXPlusDefinitions) -> None:
    pneumonia = ddx_definitions.condition("Pneumonia")
    assert pneumonia is not None
    binary = next(e for e in pneumonia.evidences if ddx_definitions.evidences[e].data_type == "B")
    valued = next(e for e in pneumonia.evidences if ddx_definitions.evidences[e].data_type != "B")
    assert typical_answer(binary, "Pneumonia", ddx_definitions) == "yes"
    assert typical_answer(valued, "Pneumonia", ddx_definitions) == "don't know"
    outside = next(e for e in ddx_definitions.evidences if e not in pneumonia.evidences)
    assert typical_answer(outside, "Pneumonia", ddx_definitions) == "no"
    with pytest.raises(KeyError):
        typical_answer(binary, "Not a condition", ddx_definitions)


def test_multi_value_answers_give_one_observation_per_value(
    ddx_definitions: DDXPlusDefinitions, official_sample_csv: Path
) -> None:
    for patient in read_patients(official_sample_csv):
        simulated = SimulatedPatient(patient, ddx_definitions)
        for base, values in patient.evidence_values().items():
            answer = simulated.answer(base)
            observations = answer.observations()
            assert [o.value for o in observations] == (list(answer.values) or [None])
            assert all(o.finding_id == base and o.present == answer.present for o in observations)
            if len(values) > 1 and answer.present:
                assert len(observations) == len(answer.values) > 1
