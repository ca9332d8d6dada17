"""`medkg doctor`, `medkg llm chat` and `medkg llm serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant.llm import ChatMessage, OpenAIChatModel
from assistant.processes.supervisor import free_port, port_accepts
from assistant.settings import Settings
from ui.commands import doctor, llm


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    # Only this area's commands, so that other areas' work in progress cannot break these tests.
    app = typer.Typer()
    doctor.register(app)
    llm.register(app)
    return app


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "MEDKG_CONFIG": str(tmp_path / "absent.toml"),
        "MEDKG_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": "",
        "NEO4J_URI": "",
    }
    env.update(extra)
    return env


def invoke(cli: typer.Typer, args: list[str], env: dict[str, str]) -> tuple[int, str]:
    # An empty value means "unset" for the settings' optional URLs.
    unset = [key for key, value in env.items() if value == ""]
    saved = {key: os.environ.pop(key) for key in unset if key in os.environ}
    try:
        result = CliRunner().invoke(cli, args, env={k: v for k, v in env.items() if v != ""})
    finally:
        os.environ.update(saved)
    return result.exit_code, result.output


def test_doctor_names_what_is_missing_and_fails(cli: typer.Typer, tmp_path: Path) -> None:
    dead = free_port()
    env = clean_env(
        tmp_path, OPENAI_BASE_URL=f"http://127.0.0.1:{dead}/v1", NEO4J_URI=f"bolt://127.0.0.1:{dead}"
    )
    started = time.monotonic()
    code, out = invoke(cli, ["doctor"], env)
    assert code == 1, out
    assert time.monotonic() - started < 30
    rows = {line[8:34].strip(): line[:8].strip() for line in out.splitlines() if line[:8].strip()}
    assert rows["LLM server"] == "MISSING"
    assert rows["graph database"] == "MISSING"
    assert rows["data dir"] == "OK"
    assert rows["python packages"] == "OK"
    assert f"cannot reach the LLM server at http://127.0.0.1:{dead}/v1" in out
    assert "OPENAI_BASE_URL" in out and "NEO4J_URI" in out
    assert "medkg-cxr (shipped" in out  # vision is on by default with the shipped model
    assert "2 required part(s) missing" in out


def test_doctor_json_and_vision_hint(cli: typer.Typer, tmp_path: Path) -> None:
    dead = free_port()
    env = clean_env(tmp_path, OPENAI_BASE_URL=f"http://127.0.0.1:{dead}/v1")
    code, out = invoke(cli, ["doctor", "--json"], env)
    checks = {row["component"]: row for row in json.loads(out)}
    assert code == 1
    assert checks["vision weights"]["status"] == "OK"
    assert "out of scope" in checks["vision weights"]["detail"]  # the shipped model states its reach
    missing = tmp_path / "no-such-checkpoint"
    env_missing = {**env, "MEDKG_VISION__MODEL": str(missing)}
    _, out_missing = invoke(cli, ["doctor", "--json"], env_missing)
    vision = {row["component"]: row for row in json.loads(out_missing)}["vision weights"]
    assert vision["status"] == "MISSING" and "MEDKG_VISION__MODEL" in vision["fix"]
    assert checks["retrieval index"]["status"] == "WARN"
    assert str(tmp_path / "data" / "index") in checks["retrieval index"]["detail"]
    # Nothing configured for the graph: the embedded ArcadeDB with its bundled Java is enough.
    assert checks["graph database"]["status"] == "OK"


def test_a_crashing_check_becomes_a_missing_row(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(settings: Settings) -> doctor.Check:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(doctor, "check_embeddings", broken)
    results = doctor.run_checks(Settings(data_dir=tmp_path))
    row = next(check for check in results if check.component == "embedding model")
    assert row.status == "MISSING" and "disk on fire" in row.detail
    assert len(results) == 11  # the others still ran


@pytest.mark.integration
def test_doctor_is_green_with_a_running_llm(cli: typer.Typer, tmp_path: Path, llm_url: str) -> None:
    code, out = invoke(cli, ["doctor"], clean_env(tmp_path, OPENAI_BASE_URL=llm_url))
    assert code == 0, out
    llm_rows = [line for line in out.splitlines() if "LLM server" in line]
    assert llm_rows and llm_rows[0].startswith("OK") and llm_url in llm_rows[0]


@pytest.mark.integration
def test_llm_chat_one_shot(cli: typer.Typer, tmp_path: Path, llm_url: str) -> None:
    env = clean_env(tmp_path, OPENAI_BASE_URL=llm_url)
    code, out = invoke(cli, ["llm", "chat", "Name a fruit.", "--max-tokens", "8", "--json"], env)
    assert code == 0, out
    reply = json.loads(out)
    assert reply["text"].strip()
    assert reply["usage"]["completion_tokens"] > 0


def test_llm_chat_reports_an_unreachable_server(cli: typer.Typer, tmp_path: Path) -> None:
    env = clean_env(tmp_path, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    code, out = invoke(cli, ["llm", "chat", "hello", "--no-stream"], env)
    assert code == 1
    assert "cannot reach the LLM server" in out


@pytest.mark.integration
def test_llm_serve_runs_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    medkg = Path(sys.executable).parent / "medkg"
    env = {**os.environ, **clean_env(tmp_path)}
    env.pop("OPENAI_BASE_URL")
    env.pop("NEO4J_URI")
    process = subprocess.Popen(
        [str(medkg), "llm", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "export OPENAI_BASE_URL=" in line:
                break
        url = f"http://127.0.0.1:{port}/v1"
        assert f"export OPENAI_BASE_URL={url}" in "".join(lines), lines
        with OpenAIChatModel(url, max_tokens=4) as model:
            assert model.chat([ChatMessage(role="user", content="Hi")]).usage.completion_tokens > 0
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stdout.read()
        assert not port_accepts(port)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
