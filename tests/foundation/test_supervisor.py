from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tests.fixtures.servers  # noqa: F401  (import check)
from assistant.processes.supervisor import ManagedService, ServiceError, free_port, port_accepts
from assistant.settings import Settings


def _python_http(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def test_service_starts_and_stops(tmp_path: Path) -> None:
    port = free_port()
    service = ManagedService(
        "http",
        _python_http(port),
        ready=lambda: port_accepts(port),
        log_path=tmp_path / "http.log",
        ports=[port],
    )
    with service:
        assert service.running
        assert port_accepts(port)
        pid = service.process.pid if service.process else None
    assert not service.running
    assert pid is not None
    assert not port_accepts(port)


def test_taken_port_gives_clear_error(tmp_path: Path) -> None:
    port = free_port()
    first = ManagedService(
        "a", _python_http(port), ready=lambda: port_accepts(port), log_path=tmp_path / "a.log", ports=[port]
    )
    with first:
        second = ManagedService(
            "b", _python_http(port), ready=lambda: True, log_path=tmp_path / "b.log", ports=[port]
        )
        with pytest.raises(ServiceError, match="already taken"):
            second.start()


def test_crashing_service_reports_log_tail(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]
    service = ManagedService("crasher", argv, ready=lambda: False, log_path=tmp_path / "c.log")
    with pytest.raises(ServiceError, match="boom: bad config"):
        service.start()


def test_not_ready_times_out(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    service = ManagedService(
        "sleeper", argv, ready=lambda: False, log_path=tmp_path / "s.log", start_timeout_s=1.0
    )
    with pytest.raises(ServiceError, match="not ready"):
        service.start()
    assert not service.running


def test_settings_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "medkg.toml"
    toml.write_text('[llm]\nmodel = "from-toml"\nbase_url = "http://toml:1/v1"\n[agent]\nmax_questions = 5\n')
    monkeypatch.setenv("MEDKG_CONFIG", str(toml))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MEDKG_LLM__BASE_URL", raising=False)
    settings = Settings()
    assert settings.llm.model == "from-toml"
    assert settings.agent.stop.max_questions == 5
    assert settings.llm.base_url == "http://toml:1/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:2/v1")
    monkeypatch.setenv("MEDKG_AGENT__MAX_QUESTIONS", "7")
    monkeypatch.setenv("NEO4J_URI", "neo4j://db:7687")
    settings = Settings()
    assert settings.llm.base_url == "http://env:2/v1"
    assert settings.agent.stop.max_questions == 7
    assert settings.graph.uri == "neo4j://db:7687"
    monkeypatch.setenv("MEDKG_LLM__BASE_URL", "http://medkg:3/v1")
    assert Settings().llm.base_url == "http://medkg:3/v1"
