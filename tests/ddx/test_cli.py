"""`medkg eval ddx`: registered on the eval sub-app, bad input is a clear error before any server starts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

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
