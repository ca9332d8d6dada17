"""Outages as answers (issue 15), on fakes: a failed turn leaves no trace, an LLM outage is said.

The same behaviour against the real embedded servers is in test_faults.py (integration).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant import outages
from assistant.agent.state import AgentOptions
from assistant.consultation import Consultation
from assistant.settings import Settings
from kg.models import Differential, Evidence
from kg.store import GraphError
from tests.fixtures.agent import FakeGraphStore, ScriptedChatModel

NO_LLM = AgentOptions(llm_phrasing=False, llm_extraction=False, llm_summary=False)
WITH_LLM = AgentOptions(llm_phrasing=True, llm_extraction=True, llm_summary=True)


class FlakyGraph(FakeGraphStore):
    """The fake graph, 'killed' and 'restarted' at will."""

    down = False

    def differential(self, evidence: Evidence, top_k: int = 10) -> Differential:
        if self.down:
            raise GraphError("graph server unreachable: connection refused")
        return super().differential(evidence, top_k)

    def ping(self) -> None:
        if self.down:
            raise GraphError("graph server unreachable")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def _consultation(settings: Settings, factory: Callable[..., Any], graph: Any, chat: Any = None) -> Any:
    options = NO_LLM if chat is None else WITH_LLM
    return Consultation(factory(chat, graph=graph), settings, options=options)


def test_graph_outage_mid_consultation_leaves_it_untouched(
    settings: Settings, fake_runtime_factory: Callable[..., Any]
) -> None:
    graph = FlakyGraph()
    c = _consultation(settings, fake_runtime_factory, graph)
    first = c.start("fever and cough")
    assert first.follow_up is not None
    before = c.state(first.session_id)

    graph.down = True
    with pytest.raises(outages.DependencyUnavailableError) as caught:
        c.answer(first.session_id, "yes")
    assert caught.value.component == "graph" and caught.value.retry_after_s > 0
    with pytest.raises(outages.DependencyUnavailableError):
        c.send(first.session_id, "I also have a headache")
    assert c.state(first.session_id) == before  # transcript, pending question, differential

    graph.down = False
    again = c.answer(first.session_id, "yes")
    # The same as a consultation that never met the outage.
    control = _consultation(settings, fake_runtime_factory, FlakyGraph())
    ref = control.answer(control.start("fever and cough").session_id, "yes")
    assert again.questions_asked == ref.questions_asked == 1
    assert [d.disease_id for d in again.differential] == [d.disease_id for d in ref.differential]
    transcript = c.state(first.session_id).transcript
    assert [e.text for e in transcript].count("yes") == 1
    assert len(transcript) == len(control.state(ref.session_id).transcript)


def test_graph_outage_at_start_leaves_no_session(
    settings: Settings, fake_runtime_factory: Callable[..., Any]
) -> None:
    graph = FlakyGraph()
    graph.down = True
    c = _consultation(settings, fake_runtime_factory, graph)
    with pytest.raises(outages.DependencyUnavailableError):
        c.start("fever and cough")
    rows = c._saver.conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()
    assert rows == (0,)


def test_llm_outage_answers_from_templates_and_says_so(
    settings: Settings, fake_runtime_factory: Callable[..., Any]
) -> None:
    down = ScriptedChatModel(fail=True)
    c = _consultation(settings, fake_runtime_factory, FlakyGraph(), outages.TrackedChatModel(down))
    result = c.start("fever and cough")
    assert result.follow_up is not None  # the graph's question, unphrased
    assert result.degraded == [outages.LLM_UNAVAILABLE]
    assert outages.DEGRADED_NOTE in result.message
    calls = len(down.calls)
    result = c.answer(result.session_id, "yes")
    assert result.degraded == [outages.LLM_UNAVAILABLE]
    # After the first failure in a turn the others fail fast (no retries against a dead server).
    assert len(down.calls) - calls <= 1
    # The note is in the reply, not in the stored transcript.
    assert all(outages.DEGRADED_NOTE not in e.text for e in c.state(result.session_id).transcript)


def test_llm_up_means_no_degraded_note(settings: Settings, fake_runtime_factory: Callable[..., Any]) -> None:
    up = ScriptedChatModel(reply=lambda _m: "Do you have a fever?", structured_reply=lambda _m, _s: {})
    c = _consultation(settings, fake_runtime_factory, FlakyGraph(), outages.TrackedChatModel(up))
    result = c.start("fever and cough")
    assert result.degraded == [] and outages.DEGRADED_NOTE not in result.message


class _DownConsultation:
    """The API's view of a consultation whose graph is down."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def start(self, message: str | None = None, **_: Any) -> Any:
        time.sleep(self.delay_s)
        raise outages.DependencyUnavailableError("graph", "The knowledge graph server is unavailable.")

    def send(self, session_id: str, message: str, **_: Any) -> Any:
        return self.start(message)

    def answer(self, session_id: str, answer: str) -> Any:
        return self.start(answer)

    def state(self, session_id: str) -> Any:
        raise KeyError(session_id)

    def export(self, session_id: str) -> Any:
        raise KeyError(session_id)


def test_api_answers_an_outage_with_503_and_retry_after(settings: Settings) -> None:
    from ui.server import create_app

    app = create_app(settings, consultation=_DownConsultation(), with_ui=False)
    with TestClient(app) as client:
        response = client.post("/v1/consultations", json={"message": "fever"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["type"].endswith("/graph-unavailable") and body["component"] == "graph"


def test_api_request_deadline_answers_504(settings: Settings) -> None:
    from ui.server import create_app

    slow = settings.model_copy(
        update={"server": settings.server.model_copy(update={"request_timeout_s": 0.3})}
    )
    app = create_app(slow, consultation=_DownConsultation(delay_s=2.0), with_ui=False)
    with TestClient(app) as client:
        started = time.monotonic()
        response = client.post("/v1/consultations", json={"message": "fever"})
        elapsed = time.monotonic() - started
    assert response.status_code == 504 and elapsed < 1.5
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/deadline-exceeded")


def test_health_says_degraded_while_a_server_restarts() -> None:
    from assistant.processes.supervisor import ServiceStatus
    from ui.health import graph_probe, overall_status
    from ui.services import ComponentHealth

    status = {"state": "restarting"}

    def current() -> ServiceStatus:
        return ServiceStatus("graph", "g", status["state"], None, 1, -9, 0.0)  # type: ignore[arg-type]

    probe = graph_probe(FlakyGraph(), current)
    ok = ComponentHealth(status="ok")
    restarting = probe()
    assert restarting.status == "error" and "restarting after exit code -9" in restarting.reason
    assert overall_status({"graph": restarting, "llm": ok}) == "degraded"
    status["state"] = "failed"
    assert overall_status({"graph": probe(), "llm": ok}) == "error"
    status["state"] = "ok"
    healthy = probe()
    assert healthy.status == "ok" and healthy.detail["supervisor"]["restarts"] == 1
    assert overall_status({"graph": healthy, "llm": ok}) == "ok"
