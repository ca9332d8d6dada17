"""Every turn result says what the consultation knows of the patient's age and sex, so that
the UI's Age/Sex boxes can show it (issue 13: "I am a 34 year old woman" left Age at 0)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.agent.state import AgentOptions
from assistant.consultation import Consultation
from assistant.settings import Settings

NO_LLM = AgentOptions(llm_phrasing=False, llm_extraction=False, llm_summary=False)


@pytest.fixture
def consultation(tmp_path: Path, fake_runtime_factory: Callable[..., Any]) -> Consultation:
    return Consultation(fake_runtime_factory(), Settings(data_dir=tmp_path), options=NO_LLM)


def test_age_and_sex_said_in_the_first_message_are_in_the_result(consultation: Consultation) -> None:
    r = consultation.start("I am a 34 year old woman with a fever and a cough")
    assert (r.age, r.sex) == (34, "F")
    assert (consultation.state(r.session_id).age, consultation.state(r.session_id).sex) == (34, "F")


def test_unknown_stays_none_and_a_newborn_is_zero(consultation: Consultation) -> None:
    r = consultation.start("I have a fever and a cough")
    assert (r.age, r.sex) == (None, None)
    baby = consultation.start("my 3-month-old son has a fever")
    assert (baby.age, baby.sex) == (0, "M")
    given = consultation.start("fever", age=0, sex="F")
    assert (given.age, given.sex) == (0, "F")


def test_said_later_in_the_consultation(consultation: Consultation) -> None:
    r = consultation.start("I have a fever and a cough")
    r = consultation.send(r.session_id, "I forgot: I'm a 70 year old man")
    assert (r.age, r.sex) == (70, "M")
    # What the patient gave first stands (a later "my 6-year-old boy" is someone else).
    r = consultation.send(r.session_id, "my 6-year-old boy has a cough too")
    assert (r.age, r.sex) == (70, "M")
