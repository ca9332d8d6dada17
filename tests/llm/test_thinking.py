"""<think> handling: whole texts and streams cut at every possible chunk boundary."""

from __future__ import annotations

import pytest

from assistant.llm.thinking import ThinkSplitter, split_think, starts_inside_think


def run_splitter(chunks: list[str], *, implicit: bool = False) -> tuple[str, str]:
    splitter = ThinkSplitter(implicit_open=implicit)
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)] + splitter.finish()
    answer = "".join(text for kind, text in pieces if kind == "answer")
    reasoning = "".join(text for kind, text in pieces if kind == "reasoning")
    return answer, reasoning


def all_two_way_splits(text: str) -> list[list[str]]:
    return [[text[:i], text[i:]] for i in range(len(text) + 1)]


@pytest.mark.parametrize(
    ("text", "answer", "reasoning"),
    [
        ("Paris.", "Paris.", None),
        ("<think>capital of France</think>\n\nParis.", "Paris.", "capital of France"),
        ("capital of France\n</think>\n\nParis.", "Paris.", "capital of France"),
        ("<think>\nstill thinking when cut off", "", "still thinking when cut off"),
        ("<think></think>Paris.", "Paris.", None),
        ("A<think>x</think>B<think>y</think>C", "ABC", "xy"),
    ],
)
def test_split_think(text: str, answer: str, reasoning: str | None) -> None:
    assert split_think(text) == (answer, reasoning)


@pytest.mark.parametrize(
    "text",
    [
        "<think>capital of France</think>\n\nParis.",
        "Plain answer with < and > signs and </b> tags.",
        "A<think>x</think>B<think>y</think>C",
        "<think>cut off mid-thought",
        "answer ending in a partial tag <thi",
    ],
)
def test_stream_split_matches_whole_text_at_every_boundary(text: str) -> None:
    expected_answer, expected_reasoning = split_think(text)
    for chunks in all_two_way_splits(text):
        answer, reasoning = run_splitter(chunks)
        assert answer.strip() == expected_answer, chunks
        assert (reasoning.strip() or None) == expected_reasoning, chunks


def test_stream_split_one_character_at_a_time() -> None:
    text = "<think>weigh the options</think>The answer is B."
    answer, reasoning = run_splitter(list(text))
    assert answer == "The answer is B."
    assert reasoning == "weigh the options"


def test_tag_never_leaks_into_answer_pieces() -> None:
    text = "<think>a</think>ok"
    for chunks in all_two_way_splits(text):
        splitter = ThinkSplitter()
        pieces = [p for c in chunks for p in splitter.feed(c)] + splitter.finish()
        assert all("<" not in t for kind, t in pieces if kind == "answer"), chunks


def test_implicit_open_block_is_reasoning_once_closed() -> None:
    text = "The user asks about France.\n</think>\n\nParis."
    for chunks in all_two_way_splits(text):
        assert run_splitter(chunks, implicit=True) == ("Paris.", "The user asks about France.\n"), chunks


def test_implicit_open_without_close_is_the_answer() -> None:
    assert run_splitter(["Paris", " is the capital."], implicit=True) == ("Paris is the capital.", "")


def test_implicit_mode_accepts_an_explicit_open_tag() -> None:
    answer, reasoning = run_splitter(["<think>hm", "m</think>", "Yes."], implicit=True)
    assert (answer, reasoning) == ("Yes.", "hmm")


def test_server_split_reasoning_releases_held_text() -> None:
    splitter = ThinkSplitter(implicit_open=True)
    assert splitter.feed("Yes") == []  # held: might be reasoning
    assert splitter.server_splits() == [("answer", "Yes")]
    assert splitter.feed(", it is.") == [("answer", ", it is.")]


def test_answer_is_streamed_before_the_end() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("Hello") == [("answer", "Hello")]
    assert splitter.feed(" world <") == [("answer", " world ")]  # '<' could start a tag
    assert splitter.feed("3") == [("answer", "<3")]


@pytest.mark.parametrize(
    ("model", "implicit"),
    [
        ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", True),
        ("Qwen/QwQ-32B", True),
        ("meta-llama/Llama-3.1-8B-Instruct", False),
        ("smollm2-135m-instruct", False),
    ],
)
def test_models_that_start_inside_a_think_block(model: str, implicit: bool) -> None:
    assert starts_inside_think(model) is implicit
