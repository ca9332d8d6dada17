"""Extraction without an LLM: lexicon matching, negation/uncertainty, demographics, answer mapping."""

from __future__ import annotations

import pytest

from assistant.agent.extraction import (
    FindingLexicon,
    classify_reply,
    extract_demographics,
    lexicon_mentions,
    map_answer,
    mention_to_observation,
    tokenize,
)
from kg.models import FindingConcept
from tests.fixtures.agent import FAKE_FINDINGS

LEX = FindingLexicon.build(FAKE_FINDINGS)
BY_ID = {f.id: f for f in FAKE_FINDINGS}


def found(text: str) -> dict[str, bool | None]:
    return {m.finding_id: mention_to_observation(m).present for m in lexicon_mentions(tokenize(text), LEX)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have a fever and a cough", {"f_fever": True, "f_cough": True}),
        ("no fever", {"f_fever": False}),
        ("I denies chest pain", {"f_chest_pain": False}),
        ("Patient denies chest pain but has a bad cough", {"f_chest_pain": False, "f_cough": True}),
        ("without cough", {"f_cough": False}),
        ("I don't have a fever, my throat hurts", {"f_fever": False, "f_sore_throat": True}),
        ("No fever or cough.", {"f_fever": False, "f_cough": False}),
        ("not sure if I have a rash", {"f_rash": None}),
        ("Headaches for two days", {"f_headache": True}),
        ("I'm short of breath", {"f_sob": True}),
        ("HIGH TEMPERATURE since yesterday!!", {"f_fever": True}),
        ("I have never had heartburn. I do get headaches though", {"f_heartburn": False, "f_headache": True}),
    ],
)
def test_lexicon_polarity(text: str, expected: dict[str, bool | None]) -> None:
    assert found(text) == expected


def test_longest_phrase_wins() -> None:
    hits = found("crushing chest pain radiating to the arm")
    assert "f_crushing" in hits and "f_chest_pain" not in hits


def test_hedged_mention_has_lower_confidence() -> None:
    (mention,) = lexicon_mentions(tokenize("maybe a fever"), LEX)
    obs = mention_to_observation(mention)
    assert obs.present is True and obs.confidence < 1.0


@pytest.mark.parametrize(
    ("text", "age", "sex"),
    [
        ("I'm a 45 year old woman with a cough", 45, "F"),
        ("45M, chest pain", 45, "M"),
        ("f 32 fever", 32, "F"),
        ("I am 70 and male", 70, "M"),
        ("My husband has a cough", None, None),
        ("I have had a fever for 3 days", None, None),
        ("a 6-year-old boy with a rash", 6, "M"),
        ("I'm pregnant and have headaches", None, "F"),
        # The UI's Age/Sex boxes are filled from these (issue 13).
        ("I am a 34 year old woman", 34, "F"),
        ("34yo male, sore throat", 34, "M"),
        ("34 y/o F", 34, "F"),
        ("my 3-month-old son has a fever", 0, "M"),  # a baby is 0, not unknown
        ("my 18 month old daughter is coughing", 1, "F"),
        ("newborn, not feeding well", 0, None),
        ("aged 70, short of breath", 70, None),
        ("Age: 55. Chest pain.", 55, None),
        ("I have a sore throat and a cough", None, None),
        ("I have had a fever for 3 years", None, None),  # a duration, not an age
        ("I'm 5 days into this flu", None, None),  # not "m 5" (a 5-year-old male)
        ("I am 6 months pregnant", None, "F"),
    ],
)
def test_demographics(text: str, age: int | None, sex: str | None) -> None:
    demo = extract_demographics(text)
    assert (demo.age, demo.sex) == (age, sex)


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("yes", "yes"),
        ("Yeah, a bit", "yes"),
        ("yep", "yes"),
        ("nope", "no"),
        ("No.", "no"),
        ("not really", "no"),
        ("I don't know", "unknown"),
        ("no idea", "unknown"),
        ("not sure", "unknown"),
        ("purple elephant", None),
        ("", None),
    ],
)
def test_classify_reply(reply: str, label: str | None) -> None:
    assert classify_reply(reply) == label


def test_map_binary_answers() -> None:
    fever = BY_ID["f_fever"]
    assert map_answer("yeah, a bit", fever).observations[0].present is True
    assert map_answer("nope", fever).observations[0].present is False
    unknown = map_answer("don't know", fever).observations[0]
    assert unknown.present is None and unknown.source == "answer"
    assert not map_answer("the weather is nice", fever).understood


def test_map_categorical_values() -> None:
    side = BY_ID["f_pain_side"]
    left = map_answer("on the left side of my chest", side)
    assert [o.value for o in left.observations] == ["V_1"]
    both = map_answer("forehead and chest on the right", side)
    assert sorted(str(o.value) for o in both.observations) == ["V_2", "V_3"]
    code = map_answer("V_3", side)
    assert [o.value for o in code.observations] == ["V_3"]
    nowhere = map_answer("no", side)
    assert nowhere.observations[0].present is False
    scale = map_answer("about a 7", BY_ID["f_pain_intensity"])
    assert scale.observations[0].value == "7" and scale.observations[0].present is True


def test_yes_for_y_n_valued_finding() -> None:
    f = FindingConcept(
        id="x", name="Lesion peels", value_type="categorical", allowed_values={"V_10": "N", "V_12": "Y"}
    )
    assert map_answer("yes", f).observations[0].value == "V_12"
    assert map_answer("no", f).observations[0].present is False


def test_simulated_patient_value_answers() -> None:
    side = BY_ID["f_pain_side"]
    assert [o.value for o in map_answer("Yes: chest(R), forehead.", side).observations] == ["V_2", "V_3"]
    scale = map_answer("Yes, 7 on a scale of 0 to 10.", BY_ID["f_pain_intensity"])
    assert [o.value for o in scale.observations] == ["7"]
