"""`medkg eval qa` end to end with a fake LLM (the live version is in test_integration.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.app import App
from eval.qa import evaluate as evaluate_module
from tests.fixtures.eval import FakeChatModel, FakeGraphStore, FakeRetriever
from ui.cli import app


@pytest.fixture
def fake_resources(monkeypatch: pytest.MonkeyPatch) -> FakeChatModel:
    chat = FakeChatModel()

    @contextmanager
    def fake_open(settings: Any, needs: Any, **_: Any) -> Iterator[App]:
        yield App(settings=settings, chat_model=chat, retriever=FakeRetriever(), graph=FakeGraphStore())  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate_module, "open_app", fake_open)
    monkeypatch.setenv("MEDKG_CONFIG", "/nonexistent/medkg.toml")
    return chat


def test_all_modes_two_suites_then_resume(
    fake_resources: FakeChatModel, fixture_benchmarks: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = ["eval", "qa", "-s", "medqa", "-s", "pubmedqa_ctx", "-m", "all", "-n", "5",
            "--data", str(fixture_benchmarks), "--out", str(out)]  # fmt: skip
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 0, first.output
    assert len(fake_resources.calls) == 2 * 4 * 5
    report = json.loads((out / "results.json").read_text())
    assert [(s["suite"], s["mode"]) for s in report["scores"]] == [
        (suite, mode) for suite in ("medqa", "pubmedqa_ctx") for mode in ("direct", "cot", "rag", "kg_rag")
    ]
    assert report["run"]["requests_sent"] == 40
    # pubmedqa_ctx puts the abstract in the prompt; medqa prompts carry the options.
    prompts = [c["messages"][-1].content for c in fake_resources.calls]
    assert sum("Context:" in p for p in prompts) == 20 and sum("Options:" in p for p in prompts) == 20
    second = CliRunner().invoke(app, argv)
    assert second.exit_code == 0 and len(fake_resources.calls) == 40
    assert json.loads((out / "results.json").read_text())["run"]["requests_sent"] == 0


def test_bad_arguments_exit_with_a_message(fake_resources: FakeChatModel, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_suite = runner.invoke(app, ["eval", "qa", "--suite", "usmle"])
    assert bad_suite.exit_code == 2 and "choose from" in bad_suite.output
    bad_mode = runner.invoke(app, ["eval", "qa", "--mode", "fast"])
    assert bad_mode.exit_code == 2 and "unknown mode" in bad_mode.output
    missing = runner.invoke(app, ["eval", "qa", "--data", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "no medqa data" in missing.output
    assert fake_resources.calls == []
