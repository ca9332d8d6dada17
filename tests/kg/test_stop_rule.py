"""The one stop rule: defaults, validated ranges, frozen, validated copies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kg.models import (
    DEFAULT_MAX_QUESTIONS,
    DEFAULT_MIN_INFORMATION_GAIN,
    DEFAULT_POSTERIOR_THRESHOLD,
    DEFAULT_TOP_CANDIDATES,
    StopRule,
)


def test_defaults_are_the_documented_ones() -> None:
    rule = StopRule()
    assert rule.model_dump() == {
        "max_questions": DEFAULT_MAX_QUESTIONS,
        "posterior_threshold": DEFAULT_POSTERIOR_THRESHOLD,
        "min_information_gain": DEFAULT_MIN_INFORMATION_GAIN,
        "top_candidates": DEFAULT_TOP_CANDIDATES,
    }
    assert (DEFAULT_MAX_QUESTIONS, DEFAULT_POSTERIOR_THRESHOLD) == (16, 0.95)


@pytest.mark.parametrize(
    "bad",
    [
        {"max_questions": -1},
        {"posterior_threshold": 1.1},
        {"posterior_threshold": -0.1},
        {"min_information_gain": -0.01},
        {"top_candidates": 0},
        {"unknown_knob": 1},
    ],
)
def test_out_of_range_or_unknown_fields_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        StopRule.model_validate(bad)


def test_frozen_and_hashable() -> None:
    rule = StopRule()
    with pytest.raises(ValidationError):
        rule.max_questions = 3  # type: ignore[misc]
    assert hash(rule) == hash(StopRule())


def test_updated_validates_and_keeps_the_rest() -> None:
    rule = StopRule(min_information_gain=0.05)
    short = rule.updated(max_questions=4)
    assert short == StopRule(max_questions=4, min_information_gain=0.05)
    assert rule.max_questions == DEFAULT_MAX_QUESTIONS
    with pytest.raises(ValidationError):
        rule.updated(posterior_threshold=2.0)
