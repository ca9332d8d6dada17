"""QA evaluation against the REAL embedded llama.cpp model, index and graph.

A smoke run per suite in direct mode on the benchmark rows shipped in
tests/fixtures/data/benchmarks (answers capped at a few tokens to keep the whole file within a
few minutes on 2 cores), RAG and KG-RAG on MedQA with the session's real FAISS+BM25 index and
the full graph on the embedded Bolt server, and the CLI end to end (resumed second call sends
no request).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.llm import create_chat_model
from assistant.llm.base import ChatModel
from assistant.settings import Settings
from eval.qa.cache import ResultCache
from eval.qa.items import Suite
from eval.qa.kg_context import KGContext
from eval.qa.loaders import load_suite
from eval.qa.modes import DEFAULT_MAX_TOKENS, Mode
from eval.qa.runner import QARunner, RunOptions

pytestmark = pytest.mark.integration

SMOKE_ITEMS = 20  # at most: the shipped files hold 5 to 11 rows per suite
OPTIONS = RunOptions(
    concurrency=4, max_tokens={**DEFAULT_MAX_TOKENS, Mode.DIRECT: 6, Mode.RAG: 6, Mode.KG_RAG: 6}
)


@pytest.fixture(scope="module")
def live_chat(llm_url: str, base_settings: Settings) -> ChatModel:
    return create_chat_model(base_settings.llm.model_copy(update={"base_url": llm_url}))


@pytest.mark.parametrize("suite", list(Suite))
def test_smoke_direct_per_suite(
    suite: Suite, live_chat: ChatModel, fixture_benchmarks: Path, tmp_path: Path
) -> None:
    items = load_suite(suite, fixture_benchmarks, limit=SMOKE_ITEMS)
    cache_path = tmp_path / "cache.jsonl"
    run = QARunner(chat=live_chat, cache=ResultCache(cache_path), options=OPTIONS).run(items, Mode.DIRECT)
    assert run.errors == 0
    assert run.score.n == len(items) == len(ResultCache(cache_path))
    assert all(r.output.strip() for r in run.results)
    # The extraction must read a real answer out of most of what the model writes.
    assert run.score.n - run.score.unparseable >= len(items) // 2, [r.output for r in run.results]
    assert run.score.correct == sum(r.prediction == r.answer for r in run.results)


def _runner(chat: ChatModel, cache: Path, **resources: object) -> QARunner:
    return QARunner(chat=chat, cache=ResultCache(cache), options=OPTIONS, **resources)  # type: ignore[arg-type]


def test_rag_with_the_real_index(
    live_chat: ChatModel, retriever: object, fixture_benchmarks: Path, tmp_path: Path
) -> None:
    items = load_suite(Suite.MEDQA, fixture_benchmarks, limit=SMOKE_ITEMS)
    run = _runner(live_chat, tmp_path / "c.jsonl", retriever=retriever).run(items, Mode.RAG)
    assert run.errors == 0 and run.score.n == len(items)
    assert run.score.n - run.score.unparseable >= len(items) // 2


def test_kg_rag_with_the_full_graph(
    live_chat: ChatModel,
    retriever: object,
    graph_store: object,
    fixture_benchmarks: Path,
    tmp_path: Path,
) -> None:
    items = load_suite(Suite.MEDQA, fixture_benchmarks, limit=SMOKE_ITEMS)
    kg = KGContext(graph_store)  # type: ignore[arg-type]
    facts = [kg.facts_for(item.question) for item in items]
    # USMLE vignettes name symptoms the graph holds: most questions get graph facts.
    assert sum(bool(f) for f in facts) >= len(items) // 2, facts
    assert any(" p=" in f for f in facts)
    run = _runner(live_chat, tmp_path / "c.jsonl", retriever=retriever, kg=kg).run(items, Mode.KG_RAG)
    assert run.errors == 0 and run.score.n == len(items)


def test_linker_on_the_real_graph_lexicon(graph_store: object) -> None:
    kg = KGContext(graph_store)  # type: ignore[arg-type]
    linked = kg.linker.link("A 34-year-old woman has fever, cough and shortness of breath but no chest pain.")
    assert len(linked.finding_ids(negated=False)) >= 2
    assert linked.finding_ids(negated=True)
    assert (linked.age, linked.sex) == (34, "F")


def test_cli_end_to_end_and_resume(
    llm_url: str, fixture_benchmarks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.cli import app

    monkeypatch.setenv("OPENAI_BASE_URL", llm_url)
    monkeypatch.setenv("MEDKG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDKG_CONFIG", str(tmp_path / "absent.toml"))
    out = tmp_path / "out"
    data = str(fixture_benchmarks)
    argv = ["eval", "qa", "--suite", "medqa", "--suite", "pubmedqa", "--mode", "direct",
            "--limit", "3", "--max-tokens", "6", "--data", data, "--out", str(out)]  # fmt: skip
    first = CliRunner().invoke(app, argv)
    assert first.exit_code == 0, first.output
    assert "| medqa | direct | 3 |" in first.output and "| pubmedqa | direct | 3 |" in first.output
    report = json.loads((out / "results.json").read_text())
    assert report["run"]["requests_sent"] == 6
    assert (out / "results.png").stat().st_size > 0 and (out / "results.md").is_file()
    second = CliRunner().invoke(app, argv)
    assert second.exit_code == 0, second.output
    assert json.loads((out / "results.json").read_text())["run"]["requests_sent"] == 0
