"""The Gradio callbacks without a browser: what each turn sends to the Age/Sex boxes, and the
one progress indicator per turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.fixtures.ui import FakeConsultation
from ui.services import AppServices
from ui.web.app import ConsultationCallbacks, UserFacingError, build_blocks, parse_age

# submit() returns the input box, then the turn outputs; these are the last two.
AGE, SEX, YES, NO = -4, -3, -2, -1


@pytest.fixture
def callbacks(tmp_path: Path) -> ConsultationCallbacks:
    services = AppServices(
        settings=Settings(data_dir=tmp_path), consultation=FakeConsultation(), reports=None
    )
    return ConsultationCallbacks(services)


def submit(chat: ConsultationCallbacks, text: str, age: str = "", sex: str | None = None) -> Any:
    return chat.submit({"text": text, "files": []}, [], None, age, sex, None)


@pytest.mark.parametrize(
    ("text", "age", "sex"),
    [
        ("I am a 34 year old woman with a fever", "34", "F"),
        ("34yo male, cough", "34", "M"),
        ("my 3-month-old son has a fever", "0", "M"),
        ("aged 70, short of breath", "70", None),
        ("I have a fever and a cough", "", None),  # unknown: empty, not 0
    ],
)
def test_age_and_sex_from_the_chat_fill_the_boxes(
    callbacks: ConsultationCallbacks, text: str, age: str, sex: str | None
) -> None:
    outputs = submit(callbacks, text)
    assert outputs[AGE] == {"__type__": "update", "value": age, "interactive": False}
    assert outputs[SEX] == {"__type__": "update", "value": sex, "interactive": False}


def test_zero_typed_in_the_box_is_a_newborn_not_unknown(callbacks: ConsultationCallbacks) -> None:
    outputs = submit(callbacks, "fever and a cough", age="0", sex="F")
    assert outputs[AGE]["value"] == "0" and outputs[SEX]["value"] == "F"
    assert callbacks.services.consultation.state(outputs[2]).age == 0  # type: ignore[union-attr]
    outputs = submit(callbacks, "fever and a cough", age="")
    assert outputs[AGE]["value"] == ""
    assert callbacks.services.consultation.state(outputs[2]).age is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("typed", "age"), [("", None), ("  ", None), (None, None), ("0", 0), (" 34 ", 34), ("130", 130)]
)
def test_age_box_parsing(typed: str | None, age: int | None) -> None:
    assert parse_age(typed) == age


@pytest.mark.parametrize("typed", ["-1", "131", "3.5", "abc", "nan"])
def test_age_box_refuses_what_is_not_an_age(callbacks: ConsultationCallbacks, typed: str) -> None:
    with pytest.raises(UserFacingError, match="leave it empty if unknown"):
        parse_age(typed)
    with pytest.warns(UserWarning, match="whole number of years"):
        outputs = submit(callbacks, "fever", age=typed)
    assert outputs[2] is None and outputs[AGE] == {"__type__": "update"}  # no session opened


def test_later_turns_keep_showing_what_the_consultation_knows(callbacks: ConsultationCallbacks) -> None:
    first = submit(callbacks, "I have a fever")
    session, last = first[2], first[8]
    later = callbacks.submit({"text": "I'm a 45 year old man"}, first[1], session, None, None, last)
    assert (later[AGE]["value"], later[SEX]["value"]) == ("45", "M")
    answered = callbacks.answer("Yes", later[1], session, later[8])
    assert (answered[AGE]["value"], answered[SEX]["value"]) == ("45", "M")


def test_a_refused_first_message_keeps_what_was_typed(callbacks: ConsultationCallbacks) -> None:
    with pytest.warns(UserWarning, match="Type a message"):
        outputs = submit(callbacks, "", age="30", sex="F")
    assert outputs[AGE] == {"__type__": "update"} and outputs[SEX] == {"__type__": "update"}


def test_new_session_clears_and_unlocks_the_boxes(callbacks: ConsultationCallbacks) -> None:
    outputs = callbacks.new_session()
    # new_session returns the input box, the turn outputs, then the export file.
    assert outputs[AGE - 1] == {"__type__": "update", "value": "", "interactive": True}
    assert outputs[SEX - 1] == {"__type__": "update", "value": None, "interactive": True}


def test_empty_age_box_shows_unknown_not_zero(tmp_path: Path) -> None:
    blocks = build_blocks(AppServices(settings=Settings(data_dir=tmp_path), consultation=None, reports=None))
    config = blocks.get_config_file()
    age = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "age")
    assert age["type"] == "textbox"  # an empty gr.Number shows and sends 0
    assert age["props"]["value"] == "" and age["props"]["placeholder"] == "unknown"


def test_one_progress_indicator_per_turn(tmp_path: Path) -> None:
    """Gradio covers every output of an event with a progress bar unless told where to show it."""
    blocks = build_blocks(AppServices(settings=Settings(data_dir=tmp_path), consultation=None, reports=None))
    config = blocks.get_config_file()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    turns = [d for d in config["dependencies"] if d["inputs"] and len(d["outputs"]) >= 8]
    assert len(turns) == 4  # submit and the three quick answers
    for dependency in turns:
        assert dependency["show_progress"] == "full"
        assert [ids[i] for i in dependency["show_progress_on"]] == ["chat"]
    drafts = [d for d in config["dependencies"] if ids[d["outputs"][0]] == "report-draft"]
    assert [[ids[i] for i in d["show_progress_on"]] for d in drafts] == [["report-draft"]]


@pytest.mark.parametrize(
    ("choices", "shown"),
    [
        (["Yes", "No", "Don't know"], True),
        (["flank", "groin", "Don't know"], False),
        (["0", "1", "Don't know"], False),
    ],
)
def test_yes_no_buttons_only_for_a_yes_or_no_question(choices: list[str], shown: bool) -> None:
    from assistant.contracts import FollowUp, TurnResult
    from ui.web.app import _turn_outputs

    follow_up = FollowUp(finding_id="E_55", text="Where is the pain?", graph_text="Where?", choices=choices)
    result = TurnResult(session_id="s", status="asking", message="", follow_up=follow_up, disclaimer="")
    outputs = _turn_outputs([], "s", result)
    assert outputs[YES] == outputs[NO] == {"__type__": "update", "visible": shown}
    assert _turn_outputs([], None, None)[YES] == {"__type__": "update", "visible": False}


def test_a_server_restarting_keeps_the_message_to_send_again(
    callbacks: ConsultationCallbacks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.outages import DependencyUnavailableError

    def down(*_: Any, **__: Any) -> Any:
        raise DependencyUnavailableError("graph", "The knowledge graph is restarting.")

    monkeypatch.setattr(callbacks.services.consultation, "start", down)
    with pytest.warns(UserWarning, match="graph is restarting"):
        outputs = submit(callbacks, "fever and a cough")
    assert outputs[0] == {"__type__": "update"}  # the typed text is left in the box
    assert outputs[2] is None  # no session was opened
