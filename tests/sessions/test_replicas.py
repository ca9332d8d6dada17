"""Two medkg replicas on one PostgreSQL: a consultation moves between them, concurrent clients
lose nothing and never interleave a turn, and a replica killed mid-turn loses nothing that was
acknowledged. The replicas share the session's embedded graph and LLM servers (live_settings)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from assistant.settings import SessionSettings, Settings
from ui.server import BackgroundServer

pytestmark = pytest.mark.integration

KEY_A, KEY_B = "key-alice-0123456789", "key-bob-0123456789"
REPO = Path(__file__).resolve().parents[2]


def replica_settings(live: Settings, postgres_url: str, data_dir: Path, *, llm: bool = True) -> Settings:
    agent = live.agent.model_copy(
        update={"llm_phrasing": llm, "llm_extraction": llm, "llm_summary": llm, "max_questions": 30}
    )
    server = live.server.model_copy(
        update={
            "api_keys": [SecretStr(KEY_A), SecretStr(KEY_B)],
            "rate_limits": live.server.rate_limits.model_copy(update={"enabled": False}),
        }
    )
    return live.model_copy(
        update={
            "data_dir": data_dir,
            "agent": Settings(agent=agent.model_dump()).agent,
            "server": server,
            "sessions": SessionSettings(url=SecretStr(postgres_url), lock_timeout_s=60),
        }
    )


@contextlib.contextmanager
def replica(settings: Settings) -> Iterator[str]:
    """One medkg replica in this process: open_app (no index, no images) + the HTTP API."""
    from assistant.app import Needs, open_app
    from ui.server import create_app

    with open_app(settings, Needs(retriever="none", images=False)) as assembled:
        app = create_app(assembled.settings, assembled=assembled, with_ui=False)
        with BackgroundServer(app) as server:
            yield server.url


@pytest.fixture(scope="module")
def replica_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Shared by the replicas of this module only for the finding-embedding cache (speed).
    return tmp_path_factory.mktemp("replicas")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def transcript(url: str, session_id: str, key: str = KEY_A) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/v1/consultations/{session_id}", headers=auth(key), timeout=60)
    r.raise_for_status()
    return list(r.json()["transcript"])


def assert_alternates(entries: list[dict[str, Any]]) -> None:
    roles = [e["role"] for e in entries]
    assert roles == ["patient", "assistant"] * (len(roles) // 2), roles


def test_consultation_continues_on_second_replica(
    live_settings: Settings, graph_store: Any, postgres_url: str, replica_data_dir: Path
) -> None:
    settings = replica_settings(live_settings, postgres_url, replica_data_dir)
    with replica(settings) as a, replica(settings) as b:
        started = httpx.post(
            f"{a}/v1/consultations",
            json={"message": "I have had a fever and a cough for three days", "age": 40, "sex": "F"},
            headers=auth(KEY_A),
            timeout=300,
        )
        assert started.status_code == 201, started.text
        sid = started.json()["session_id"]
        # The second replica knows the consultation and its owner: the other key gets 404.
        assert httpx.get(f"{b}/v1/consultations/{sid}", headers=auth(KEY_B), timeout=30).status_code == 404
        reply = httpx.post(
            f"{b}/v1/consultations/{sid}/messages",
            json={"text": "I also feel short of breath"},
            headers=auth(KEY_A),
            timeout=300,
        )
        assert reply.status_code == 200, reply.text
        entries = transcript(a, sid)
    assert [e["text"] for e in entries if e["role"] == "patient"] == [
        "I have had a fever and a cough for three days",
        "I also feel short of breath",
    ]
    assert_alternates(entries)
    assert entries[-1]["text"] == reply.json()["message"]


def test_concurrent_clients_through_two_replicas(
    live_settings: Settings, graph_store: Any, postgres_url: str, replica_data_dir: Path
) -> None:
    """20 clients, 5 consultations (4 clients each), every message to the replica the client's
    turn number picks: each transcript holds every message once, in each client's order, each
    followed by the very reply its client received."""
    settings = replica_settings(live_settings, postgres_url, replica_data_dir, llm=False)
    clients, consultations, per_client = 20, 5, 3
    with replica(settings) as a, replica(settings) as b:
        urls = [a, b]
        sids = []
        for n in range(consultations):
            r = httpx.post(
                f"{urls[n % 2]}/v1/consultations", json={"message": "I have a headache"}, headers=auth(KEY_A)
            )
            assert r.status_code == 201, r.text
            sids.append(r.json()["session_id"])
        replies: dict[str, str] = {}
        errors: list[str] = []
        barrier = threading.Barrier(clients)

        def client(c: int) -> None:
            sid = sids[c % consultations]
            with httpx.Client(headers=auth(KEY_A), timeout=120) as http:
                barrier.wait()
                for m in range(per_client):
                    text = f"client {c} message {m}: I also feel tired"
                    r = http.post(f"{urls[(c + m) % 2]}/v1/consultations/{sid}/messages", json={"text": text})
                    if r.status_code != 200:
                        errors.append(f"{c}/{m}: {r.status_code} {r.text[:200]}")
                        return
                    replies[text] = r.json()["message"]

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        assert len(replies) == clients * per_client
        for n, sid in enumerate(sids):
            entries = transcript(urls[n % 2 - 1], sid)
            assert_alternates(entries)
            patient = [e["text"] for e in entries if e["role"] == "patient"][1:]
            mine = [c for c in range(clients) if c % consultations == n]
            expected = {f"client {c} message {m}: I also feel tired" for c in mine for m in range(per_client)}
            assert sorted(patient) == sorted(expected)  # every message exactly once
            for c in mine:
                own = [p for p in patient if p.startswith(f"client {c} ")]
                assert own == [f"client {c} message {m}: I also feel tired" for m in range(per_client)]
            for i in range(2, len(entries), 2):  # each turn's reply is the one its client got
                assert entries[i + 1]["text"] == replies[entries[i]["text"]]


def serve_process(settings: Settings, postgres_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """A real `medkg serve` on the shared Postgres, graph and LLM (vision off: it is not under test)."""
    env = {
        **os.environ,
        "MEDKG_DATA_DIR": str(settings.data_dir),
        "MEDKG_SESSIONS__URL": postgres_url,
        "MEDKG_LLM__BASE_URL": str(settings.llm.base_url),
        "MEDKG_GRAPH__URI": str(settings.graph.uri),
        "MEDKG_VISION__MODEL": "",
        "MEDKG_SERVER__API_KEYS": f'["{KEY_A}", "{KEY_B}"]',
        "MEDKG_SERVER__RATE_LIMITS__ENABLED": "false",
    }
    medkg = Path(sys.executable).with_name("medkg")
    return subprocess.Popen(
        [str(medkg), "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"medkg serve exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/consultations/x", headers=auth(KEY_A), timeout=2).status_code == 404:
                return
        time.sleep(0.5)
    raise AssertionError(f"medkg serve not ready in {timeout_s:g} s: {log.read_text()[-2000:]}")


def advisory_locks(postgres_url: str) -> int:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").fetchone()
    return int(row[0]) if row else 0


def test_replica_killed_mid_turn_loses_nothing_acknowledged(
    live_settings: Settings, graph_store: Any, postgres_url: str, replica_data_dir: Path, tmp_path: Path
) -> None:
    from assistant.processes.supervisor import free_port

    settings = replica_settings(live_settings, postgres_url, replica_data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = serve_process(settings, postgres_url, port, log)
    try:
        wait_ready(url, proc, log)
        r = httpx.post(
            f"{url}/v1/consultations",
            json={"message": "I have a sore throat"},
            headers=auth(KEY_A),
            timeout=300,
        )
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        ack = httpx.post(
            f"{url}/v1/consultations/{sid}/messages",
            json={"text": "and a runny nose"},
            headers=auth(KEY_A),
            timeout=300,
        )
        assert ack.status_code == 200, ack.text

        # The next turn: killed (SIGKILL, the whole process group) once it holds the lock.
        def send_and_die() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the replica dies under it
                httpx.post(
                    f"{url}/v1/consultations/{sid}/messages",
                    json={"text": "my ears hurt too"},
                    headers=auth(KEY_A),
                    timeout=300,
                )

        inflight = threading.Thread(target=send_and_die, daemon=True)
        inflight.start()
        deadline = time.monotonic() + 60
        while advisory_locks(postgres_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert advisory_locks(postgres_url) > 0, "the turn never took its lock"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    with replica(settings) as b:
        entries = transcript(b, sid)
        patient = [e["text"] for e in entries if e["role"] == "patient"]
        assert patient[:2] == ["I have a sore throat", "and a runny nose"]  # acknowledged: kept
        assert patient[2:] in ([], ["my ears hurt too"])  # the killed turn: all or nothing
        assert_alternates(entries)
        assert entries[3]["text"] == ack.json()["message"]
        # The dead replica's lock went with its connection (else: 409 after the lock timeout).
        r = httpx.post(
            f"{b}/v1/consultations/{sid}/messages",
            json={"text": "no fever"},
            headers=auth(KEY_A),
            timeout=300,
        )
        assert r.status_code == 200, r.text
        assert transcript(b, sid)[-2]["text"] == "no fever"
