"""Report files: JSON, Markdown table, PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

from eval.qa.metrics import Score
from eval.qa.report import markdown_table, write_report


def _score(suite: str, mode: str, accuracy: float) -> Score:
    return Score(
        suite=suite, mode=mode, model="m", prompt=f"qa_{mode}", prompt_version="1", n=100,
        correct=int(accuracy * 100), accuracy=accuracy, se=0.04, unparseable=3, errors=0,
        chance=0.25, mean_latency_s=0.5, mean_completion_tokens=4,
    )  # fmt: skip


def test_report_files(tmp_path: Path) -> None:
    scores = [
        _score("medqa", "direct", 0.31),
        _score("medqa", "cot", 0.27),
        _score("pubmedqa", "direct", 0.5),
    ]
    files = write_report(scores, tmp_path / "out", run_info={"model": "m", "limit": 100})
    payload = json.loads(files["json"].read_text())
    assert payload["run"]["limit"] == 100
    assert [s["mode"] for s in payload["scores"]] == ["direct", "cot", "direct"]
    table = files["md"].read_text()
    assert "| medqa | cot | 100 | 27.0% ± 4.0 | 25.0% | 3 | 0 | 0.50 |" in table
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_table_has_one_row_per_score() -> None:
    table = markdown_table([_score("medqa", "direct", 0.3), _score("medqa", "rag", 0.35)])
    assert len(table.strip().splitlines()) == 4
