"""The agent's stop rule in the settings: flat [agent] keys and variables, or a nested [agent.stop]."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.settings import AgentSettings, Settings
from kg.models import StopRule


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDKG_CONFIG", str(tmp_path / "absent.toml"))


def test_default_rule() -> None:
    assert Settings().agent.stop == StopRule()


def test_flat_environment_variables_set_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDKG_AGENT__MAX_QUESTIONS", "7")
    monkeypatch.setenv("MEDKG_AGENT__POSTERIOR_THRESHOLD", "0.8")
    monkeypatch.setenv("MEDKG_AGENT__MIN_INFORMATION_GAIN", "0.02")
    monkeypatch.setenv("MEDKG_AGENT__TOP_CANDIDATES", "5")
    assert Settings().agent.stop == StopRule(
        max_questions=7, posterior_threshold=0.8, min_information_gain=0.02, top_candidates=5
    )


def test_nested_variables_and_flat_ones_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDKG_AGENT__STOP__MAX_QUESTIONS", "9")
    monkeypatch.setenv("MEDKG_AGENT__STOP__TOP_CANDIDATES", "4")
    assert Settings().agent.stop == StopRule(max_questions=9, top_candidates=4)
    monkeypatch.setenv("MEDKG_AGENT__MAX_QUESTIONS", "3")  # a flat key wins over the nested one
    assert Settings().agent.stop == StopRule(max_questions=3, top_candidates=4)


def test_toml_flat_and_nested_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flat = tmp_path / "flat.toml"
    flat.write_text("[agent]\nmax_questions = 5\nposterior_threshold = 0.9\nllm_phrasing = false\n")
    monkeypatch.setenv("MEDKG_CONFIG", str(flat))
    settings = Settings()
    assert settings.agent.stop == StopRule(max_questions=5, posterior_threshold=0.9)
    assert settings.agent.llm_phrasing is False
    nested = tmp_path / "nested.toml"
    nested.write_text("[agent.stop]\nmin_information_gain = 0.03\n")
    monkeypatch.setenv("MEDKG_CONFIG", str(nested))
    assert Settings().agent.stop == StopRule(min_information_gain=0.03)
    monkeypatch.setenv("MEDKG_AGENT__MAX_QUESTIONS", "2")  # the environment over the file
    assert Settings().agent.stop == StopRule(max_questions=2, min_information_gain=0.03)


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDKG_AGENT__POSTERIOR_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="posterior_threshold"):
        Settings()


def test_keyword_construction() -> None:
    assert AgentSettings(max_questions=4).stop == StopRule(max_questions=4)  # type: ignore[call-arg]
    assert AgentSettings(stop=StopRule(top_candidates=3), max_questions=4).stop == StopRule(
        max_questions=4, top_candidates=3
    )


def test_embedded_llm_threads_leave_one_cpu_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama.cpp with a thread on every core collapses beside any busy process (bench/llm_threads.py)."""
    from assistant import settings as settings_module

    for cpus, expected in ((1, 1), (2, 1), (4, 3), (32, 8)):
        monkeypatch.setattr(settings_module.os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        assert settings_module.default_llm_threads() == expected
        assert settings_module.LLMSettings().threads == expected
    monkeypatch.setenv("MEDKG_LLM__THREADS", "3")
    assert settings_module.Settings().llm.threads == 3
