"""The assembly's pieces that need no servers: what each entry point asks for, the progress
lines a background index build prints, and what /healthz says while it runs."""

from __future__ import annotations

import pytest

from assistant.app import GRAPH_ONLY, SERVE, App, _ProgressEcho
from assistant.settings import Settings
from eval.ddx.evaluate import evaluation_needs
from eval.qa.evaluate import qa_needs
from eval.qa.modes import Mode
from retrieval.progress import IndexProgress
from ui.health import retriever_probe


def test_entry_points_ask_only_for_what_they_use() -> None:
    assert SERVE.retriever == "background" and SERVE.consultation and SERVE.images
    assert not GRAPH_ONLY.llm and GRAPH_ONLY.retriever == "none" and not GRAPH_ONLY.consultation
    assert evaluation_needs(["graph", "baseline"]) == GRAPH_ONLY
    assert evaluation_needs(["full"]).llm
    direct = qa_needs([Mode.DIRECT])
    assert not direct.graph and direct.retriever == "none" and direct.llm
    assert qa_needs([Mode.KG_RAG]).graph
    assert qa_needs([Mode.RAG]).retriever == "load"


def test_a_missing_part_says_why() -> None:
    app = App(settings=Settings())
    app.set_retriever(None, "the evidence index is being built")
    assert app.disabled["retriever"] == "the evidence index is being built"
    with pytest.raises(RuntimeError, match="without the graph"):
        app.require_graph()


def test_progress_echo_prints_a_line_per_tenth() -> None:
    lines: list[str] = []
    echo = _ProgressEcho(lines.append)
    for done in range(0, 1001, 10):
        echo(IndexProgress(stage="embed", done=done, total=1000, elapsed_s=done / 10))
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert lines[0].startswith("  retrieval index: embed 0/1000")
    echo(IndexProgress(stage="ready", done=1, total=1, elapsed_s=100.0))
    assert len(lines) == 11


def test_health_shows_the_build_while_the_index_is_missing() -> None:
    snapshot = IndexProgress(stage="embed", done=300, total=1000, elapsed_s=30.0, eta_s=70.0)
    probe = retriever_probe(lambda: None, lambda: "building", lambda: snapshot)
    health = probe()
    assert health.status == "disabled" and health.reason == "building"
    assert health.detail["build"]["done"] == 300 and health.detail["build"]["eta_s"] == 70.0
    ready = retriever_probe(lambda: object(), lambda: None, lambda: snapshot)()
    assert ready.status == "ok" and "build" not in ready.detail
