"""The session store: SQLite by default, Postgres by one setting; the advisory lock across
replicas; schema set-up on first start, idempotent and safe when replicas start together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from assistant.agent.state import AgentOptions
from assistant.consultation import Consultation
from assistant.sessions import (
    PostgresSessions,
    SessionBusyError,
    SessionSettings,
    SqliteSessions,
    masked_url,
    open_sessions,
)
from assistant.settings import Settings

NO_LLM = AgentOptions(llm_phrasing=False, llm_extraction=False, llm_summary=False)


def pg_settings(tmp_path: Path, url: str, **sessions: Any) -> Settings:
    return Settings(data_dir=tmp_path, sessions=SessionSettings(url=SecretStr(url), **sessions))


def test_default_is_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with open_sessions(settings) as store:
        assert isinstance(store, SqliteSessions) and store.path == str(settings.sessions_path)
    with open_sessions(settings, path=":memory:") as store:
        assert store.describe() == "sqlite::memory:"


def test_environment_selects_postgres(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDKG_SESSIONS__URL", "postgresql://u:secret@db:5432/medkg")
    monkeypatch.setenv("MEDKG_SESSIONS__LOCK_TIMEOUT_S", "7")
    settings = Settings(data_dir=tmp_path)
    assert settings.sessions.url is not None and "secret" not in repr(settings)
    assert settings.sessions.lock_timeout_s == 7


def test_unsupported_url_and_masking(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/db is not supported"):
        open_sessions(pg_settings(tmp_path, "mysql://u:pw@h/db"))
    assert masked_url("postgresql://medkg:s3cret@db:5432/x") == "postgresql://medkg:***@db:5432/x"
    assert masked_url("postgresql://medkg@db/x") == "postgresql://medkg@db/x"


def test_unreachable_postgres_fails_clearly_without_the_password(tmp_path: Path) -> None:
    from assistant.processes.supervisor import free_port

    url = f"postgresql://medkg:s3cret@127.0.0.1:{free_port()}/x"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="cannot use the sessions database") as info:
        open_sessions(pg_settings(tmp_path, url, connect_timeout_s=2))
    assert "s3cret" not in str(info.value) and time.monotonic() - started < 15


def test_setup_is_idempotent_when_replicas_start_together(postgres_url: str) -> None:
    stores: list[PostgresSessions] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresSessions(postgres_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors and len(stores) == 4
        with stores[0].pool.connection() as conn:
            tables = {r["tablename"] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
        assert {"checkpoints", "checkpoint_writes", "checkpoint_blobs", "medkg_session_owners"} <= tables
    finally:
        for store in stores:
            store.close()


def test_advisory_lock_excludes_other_replicas_and_times_out(postgres_url: str) -> None:
    config = SessionSettings(lock_timeout_s=0.5)
    with PostgresSessions(postgres_url, config) as a, PostgresSessions(postgres_url, config) as b:
        with a.lock("s1"):
            started = time.monotonic()
            with pytest.raises(SessionBusyError, match="s1 is busy"), b.lock("s1"):
                pass
            assert 0.4 < time.monotonic() - started < 5
            with b.lock("s2"):  # another consultation is not held up
                pass
        with b.lock("s1"):  # released with the block
            pass


def test_waiting_replica_goes_next(postgres_url: str) -> None:
    with PostgresSessions(postgres_url) as a, PostgresSessions(postgres_url) as b:
        order: list[str] = []
        holding = threading.Event()

        def first() -> None:
            with a.lock("s"):
                holding.set()
                time.sleep(0.5)
                order.append("a")

        t = threading.Thread(target=first)
        t.start()
        holding.wait(5)
        with b.lock("s"):
            order.append("b")
        t.join()
        assert order == ["a", "b"]


def test_consultation_continues_on_another_store(
    tmp_path: Path, postgres_url: str, fake_runtime_factory: Callable[..., Any]
) -> None:
    settings = pg_settings(tmp_path, postgres_url)
    with Consultation(fake_runtime_factory(), settings, options=NO_LLM) as one:
        assert isinstance(one.sessions, PostgresSessions)
        first = one.start("I have a fever")
        assert first.follow_up is not None
    with Consultation(fake_runtime_factory(), settings, options=NO_LLM) as two:
        nxt = two.answer(first.session_id, "yes")
        state = two.state(first.session_id)
    assert nxt.questions_asked == first.questions_asked + 1
    assert [e.role for e in state.transcript][:1] == ["patient"]
    # The evaluations' ":memory:" stays SQLite even when Postgres is configured.
    with Consultation(fake_runtime_factory(), settings, options=NO_LLM, sessions_path=":memory:") as ev:
        assert isinstance(ev.sessions, SqliteSessions)


def test_api_answers_409_while_another_replica_holds_the_turn(
    tmp_path: Path, postgres_url: str, fake_runtime_factory: Callable[..., Any]
) -> None:
    from fastapi.testclient import TestClient

    from ui.server import create_app

    settings = pg_settings(tmp_path, postgres_url, lock_timeout_s=0.5)
    with Consultation(fake_runtime_factory(), settings, options=NO_LLM) as replica:
        sid = replica.start("I have a fever").session_id
        app = create_app(settings, consultation=replica, with_ui=False)
        with PostgresSessions(postgres_url) as other, other.lock(sid), TestClient(app) as client:
            r = client.post(f"/v1/consultations/{sid}/messages", json={"text": "and a cough"})
        assert r.status_code == 409 and r.headers["Retry-After"] == "5"
        assert r.json()["type"].endswith("consultation-busy")
        # Nothing of the refused message was recorded; the next one goes through.
        assert [e.text for e in replica.state(sid).transcript if e.role == "patient"] == ["I have a fever"]
        with TestClient(app) as client:
            assert (
                client.post(f"/v1/consultations/{sid}/messages", json={"text": "and a cough"}).status_code
                == 200
            )
