"""The runner: resumable cache, MIRAGE protocol details, concurrency, errors, scoring."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from assistant.llm.base import ChatMessage, LLMTimeoutError, LLMUnavailableError
from eval.qa.cache import ResultCache
from eval.qa.items import QAItem, Suite
from eval.qa.kg_context import KGContext
from eval.qa.metrics import standard_error
from eval.qa.modes import Mode, parse_modes
from eval.qa.runner import MissingResourceError, QARunner, RunOptions
from tests.fixtures.eval import FakeChatModel, FakeGraphStore, FakeRetriever


def mc_items(n: int) -> list[QAItem]:
    return [
        QAItem(
            id=f"q{i}",
            suite=Suite.MEDQA,
            question=f"A 30-year-old man has fever and cough number {i}. What is the diagnosis?",
            options={"A": f"Pneumonia {i}", "B": "Asthma", "C": "Sarcoidosis", "D": "Lupus"},
            answer="A" if i % 2 == 0 else "B",
        )
        for i in range(n)
    ]


def ynm_items(n: int) -> list[QAItem]:
    return [
        QAItem(
            id=f"p{i}",
            suite=Suite.PUBMEDQA,
            question=f"Does treatment {i} help?",
            options={"yes": "yes", "no": "no", "maybe": "maybe"},
            answer="yes",
        )
        for i in range(n)
    ]


def test_resumed_run_skips_finished_items(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.jsonl"
    first_chat = FakeChatModel()
    first = QARunner(chat=first_chat, cache=ResultCache(cache_path)).run(mc_items(6), Mode.DIRECT)
    assert len(first_chat.calls) == 6 and first.calls == 6

    # A fresh process: the cache is read back from disk; 4 more items, 6 of 10 already done.
    second_chat = FakeChatModel()
    second = QARunner(chat=second_chat, cache=ResultCache(cache_path)).run(mc_items(10), Mode.DIRECT)
    assert len(second_chat.calls) == 4 and second.calls == 4
    assert second.score.n == 10
    asked = {m.content for call in second_chat.calls for m in call["messages"]}
    assert any("number 9" in text for text in asked) and not any("number 0." in text for text in asked)

    # Another mode, another model or other generation settings are not served from the cache.
    third_chat = FakeChatModel()
    QARunner(chat=third_chat, cache=ResultCache(cache_path)).run(mc_items(10), Mode.COT)
    assert len(third_chat.calls) == 10
    other_model = FakeChatModel(model="other-llm")
    QARunner(chat=other_model, cache=ResultCache(cache_path)).run(mc_items(10), Mode.DIRECT)
    assert len(other_model.calls) == 10
    longer = FakeChatModel()
    options = RunOptions(max_tokens={**RunOptions().max_tokens, Mode.DIRECT: 32})
    QARunner(chat=longer, cache=ResultCache(cache_path), options=options).run(mc_items(10), Mode.DIRECT)
    assert len(longer.calls) == 10


def test_a_truncated_cache_line_is_ignored_and_redone(tmp_path: Path) -> None:
    cache_path = tmp_path / "cache.jsonl"
    QARunner(chat=FakeChatModel(), cache=ResultCache(cache_path)).run(mc_items(3), Mode.DIRECT)
    lines = cache_path.read_text().splitlines()
    cache_path.write_text("\n".join([*lines[:2], lines[2][:40]]) + "\n")  # killed mid-write
    chat = FakeChatModel()
    QARunner(chat=chat, cache=ResultCache(cache_path)).run(mc_items(3), Mode.DIRECT)
    assert len(chat.calls) == 1


def test_protocol_temperature_zero_no_prompt_cache_and_token_limits(tmp_path: Path) -> None:
    chat = FakeChatModel()
    runner = QARunner(chat=chat, cache=ResultCache(tmp_path / "c.jsonl"))
    runner.run(mc_items(2), Mode.DIRECT)
    runner.run(mc_items(2), Mode.COT)
    assert all(c["temperature"] == 0.0 and c["cache_prompt"] is False for c in chat.calls)
    assert [c["max_tokens"] for c in chat.calls] == [16, 16, 256, 256]
    user = chat.calls[0]["messages"][-1].content
    assert "A. Pneumonia 0" in user and "D. Lupus" in user
    assert 'The answer is" followed by the letter' in chat.calls[-1]["messages"][-1].content


def test_retrieval_sees_the_question_only(tmp_path: Path) -> None:
    retriever = FakeRetriever()
    chat = FakeChatModel()
    runner = QARunner(chat=chat, cache=ResultCache(tmp_path / "c.jsonl"), retriever=retriever)
    items = mc_items(3)
    runner.run(items, Mode.RAG)
    assert sorted(retriever.queries) == sorted(i.question for i in items)
    assert not any("Sarcoidosis" in q for q in retriever.queries)
    prompt = chat.calls[0]["messages"][-1].content
    assert "Relevant documents:" in prompt and "[1] Doc 0:" in prompt
    assert len([line for line in prompt.splitlines() if line.startswith("[")]) == RunOptions().passages_k


def test_kg_rag_puts_graph_facts_and_passages_in_the_prompt(tmp_path: Path) -> None:
    chat = FakeChatModel()
    runner = QARunner(
        chat=chat,
        cache=ResultCache(tmp_path / "c.jsonl"),
        retriever=FakeRetriever(),
        kg=KGContext(FakeGraphStore()),
    )
    runner.run(mc_items(1), Mode.KG_RAG)
    prompt = chat.calls[0]["messages"][-1].content
    assert "Pneumonia [ICD-10 J18.9; is a: lung disease]: Cough p=0.8, Fever p=0.65" in prompt
    assert "Relevant documents:" in prompt


def test_modes_without_their_resources_fail_clearly(tmp_path: Path) -> None:
    runner = QARunner(chat=FakeChatModel(), cache=ResultCache(tmp_path / "c.jsonl"))
    with pytest.raises(MissingResourceError, match="retriever"):
        runner.run(mc_items(1), Mode.RAG)
    runner.retriever = FakeRetriever()
    with pytest.raises(MissingResourceError, match="graph"):
        runner.run(mc_items(1), Mode.KG_RAG)


def test_scores_count_unparseable_as_wrong(tmp_path: Path) -> None:
    replies = {"q0": "A", "q1": "B", "q2": "I am not sure", "q3": "A"}  # q3's answer is B

    def reply(messages: Sequence[ChatMessage]) -> str:
        text = messages[-1].content
        return next(v for k, v in replies.items() if f"number {k[1:]}." in text)

    run = QARunner(chat=FakeChatModel(reply), cache=ResultCache(tmp_path / "c.jsonl")).run(
        mc_items(4), Mode.DIRECT
    )
    assert (run.score.n, run.score.correct, run.score.unparseable) == (4, 2, 1)
    assert run.score.accuracy == 0.5
    assert math.isclose(run.score.se, math.sqrt(0.5 * 0.5 / 4))
    assert run.score.chance == 0.25


def test_yes_no_maybe_suite_uses_its_own_prompt(tmp_path: Path) -> None:
    chat = FakeChatModel(lambda _m: "Yes, it helps.")
    run = QARunner(chat=chat, cache=ResultCache(tmp_path / "c.jsonl")).run(ynm_items(3), Mode.DIRECT)
    assert run.score.accuracy == 1.0 and math.isclose(run.score.chance, 1 / 3)
    assert "yes, no, or maybe" in chat.calls[0]["messages"][-1].content
    assert "Options:" not in chat.calls[0]["messages"][-1].content


def test_concurrent_run_matches_a_serial_run(tmp_path: Path) -> None:
    def reply(messages: Sequence[ChatMessage]) -> str:
        n = int(messages[-1].content.split("number ")[1].split(".")[0])
        return "ABCD"[n % 4]

    serial = QARunner(
        chat=FakeChatModel(reply), cache=ResultCache(tmp_path / "a.jsonl"), options=RunOptions(concurrency=1)
    )
    parallel = QARunner(
        chat=FakeChatModel(reply), cache=ResultCache(tmp_path / "b.jsonl"), options=RunOptions(concurrency=8)
    )
    a = serial.run(mc_items(40), Mode.DIRECT)
    b = parallel.run(mc_items(40), Mode.DIRECT)
    assert [(r.item_id, r.prediction) for r in a.results] == [(r.item_id, r.prediction) for r in b.results]
    assert a.score == b.score


def test_failed_requests_are_counted_not_cached_and_retried(tmp_path: Path) -> None:
    def flaky(messages: Sequence[ChatMessage]) -> str:
        if "number 1." in messages[-1].content:
            raise LLMTimeoutError("slow")
        return "A"

    cache_path = tmp_path / "c.jsonl"
    run = QARunner(chat=FakeChatModel(flaky), cache=ResultCache(cache_path)).run(mc_items(3), Mode.DIRECT)
    assert (run.errors, run.score.n, run.score.errors) == (1, 2, 1)
    retry = FakeChatModel()
    again = QARunner(chat=retry, cache=ResultCache(cache_path)).run(mc_items(3), Mode.DIRECT)
    assert len(retry.calls) == 1 and again.score.n == 3


def test_unreachable_server_stops_the_run(tmp_path: Path) -> None:
    def down(_messages: Sequence[ChatMessage]) -> str:
        raise LLMUnavailableError("connection refused")

    with pytest.raises(LLMUnavailableError):
        QARunner(chat=FakeChatModel(down), cache=ResultCache(tmp_path / "c.jsonl")).run(
            mc_items(5), Mode.DIRECT
        )


def test_parse_modes_and_standard_error() -> None:
    assert parse_modes(["all"]) == [Mode.DIRECT, Mode.COT, Mode.RAG, Mode.KG_RAG]
    assert parse_modes(["cot", "direct,cot"]) == [Mode.COT, Mode.DIRECT]
    with pytest.raises(ValueError, match="unknown mode"):
        parse_modes(["fast"])
    assert standard_error(0.0, 0) == 0.0
    assert math.isclose(standard_error(0.3, 100), math.sqrt(0.21 / 100))
