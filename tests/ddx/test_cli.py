"""`medkg eval ddx`: registered on the eval sub-app, bad input is a clear error before any server starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kg.models import StopRule
from ui.cli import app


def test_help_lists_the_options() -> None:
    result = CliRunner().invoke(app, ["eval", "ddx", "--help"])
    assert result.exit_code == 0
    for option in ("--patients", "--limit", "--policy", "--max-questions", "--seed", "--out"):
        assert option in result.output


def test_bad_patients_file_exits_2_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["eval", "ddx", "--patients", str(bad)])
    assert result.exit_code == 2
    assert "missing column" in result.output
    missing = CliRunner().invoke(app, ["eval", "ddx", "--patients", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_max_questions_and_threshold_set_the_stop_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-questions / --threshold replace those fields of the settings' rule, keep the others."""
    from eval.ddx import evaluate as ddx_evaluate

    monkeypatch.setenv("MEDKG_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("MEDKG_AGENT__MIN_INFORMATION_GAIN", "0.02")
    seen: dict[str, object] = {}

    def fake_evaluate(settings: object, patients_file: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise ValueError("stopped by the test")

    monkeypatch.setattr(ddx_evaluate, "evaluate_from_settings", fake_evaluate)
    args = ["eval", "ddx", "--limit", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--max-questions", "5", "--threshold", "0.8"])
    assert result.exit_code == 2 and "stopped by the test" in result.output
    assert seen["stop"] == StopRule(max_questions=5, posterior_threshold=0.8, min_information_gain=0.02)
    CliRunner().invoke(app, args)
    assert seen["stop"] == StopRule(min_information_gain=0.02)
