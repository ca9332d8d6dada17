"""Loaders on the dev-file layouts and on the other official shapes of each benchmark.

The dev-file tests run on the rows shipped in tests/fixtures/data/benchmarks, and again on the
full dev files in ../shared/data/benchmarks when that optional data is present.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.qa.items import Suite
from eval.qa.loaders import (
    DatasetFormatError,
    load_file,
    load_suite,
    resolve_data_files,
    split_inline_options,
)

LETTERS = set("ABCDEFGHIJ")


@pytest.fixture
def benchmarks(any_benchmarks: Path) -> Path:
    return any_benchmarks


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("suite", "n_options"),
    [
        (Suite.MEDQA, {4, 5}),
        (Suite.MEDMCQA, {4, 5}),
        (Suite.MMLU_MEDICAL, {4}),
        (Suite.MEDXPERTQA, {10}),
    ],
)
def test_multiple_choice_dev_files(benchmarks: Path, suite: Suite, n_options: set[int]) -> None:
    items = load_suite(suite, benchmarks)
    # Every labelled row of the files becomes an item (nothing silently dropped).
    rows = [row for path in resolve_data_files(suite, benchmarks) for row in _rows(path)]
    assert len(items) == len(rows) >= 5
    assert len({i.id for i in items}) == len(items)
    for item in items:
        assert item.suite is suite
        assert len(item.options) in n_options
        assert set(item.options) <= LETTERS
        assert item.answer in item.options
        assert "Answer Choices" not in item.question  # the stem only: retrieval must not see options
        assert all(text for text in item.options.values())
        assert item.contexts == []
    # Answers are spread over the letters (a constant answer would betray a mapping bug).
    assert len({i.answer for i in items}) == len(next(iter(items)).options)


def test_medqa_field_mapping(benchmarks: Path) -> None:
    first = json.loads((benchmarks / "medqa" / "dev.jsonl").read_text().splitlines()[0])
    item = load_suite(Suite.MEDQA, benchmarks, limit=1)[0]
    assert item.id == str(first["realidx"])
    assert item.question == first["question"].strip()
    assert item.options == first["options"]
    assert item.answer == first["answer_idx"]
    assert item.options[item.answer] == first["answer"]


def test_medmcqa_inline_options_mapping(benchmarks: Path) -> None:
    first = json.loads((benchmarks / "medmcqa" / "dev.jsonl").read_text().splitlines()[0])
    item = load_suite(Suite.MEDMCQA, benchmarks, limit=1)[0]
    stem, choices = first["question"].split("\nAnswer Choices:")
    assert item.question == stem.strip()
    assert item.options["A"] == choices.split("(A)")[1].split("(B)")[0].strip()
    assert item.options["D"] == choices.split("(D)")[1].strip()
    assert item.answer == first["label"][0]


def test_medxpertqa_reads_both_files_with_unique_ids(benchmarks: Path) -> None:
    files = resolve_data_files(Suite.MEDXPERTQA, benchmarks)
    assert {f.name for f in files} == {"text_reasoning.jsonl", "text_understanding.jsonl"}
    items = load_suite(Suite.MEDXPERTQA, benchmarks)
    assert any(i.id.startswith("text_understanding:") for i in items)
    assert all(len(i.options) == 10 for i in items)


def test_pubmedqa_two_settings(benchmarks: Path) -> None:
    plain = load_suite(Suite.PUBMEDQA, benchmarks)
    with_context = load_suite(Suite.PUBMEDQA_CTX, benchmarks)
    raw = json.loads((benchmarks / "pubmedqa" / "dev_pqal.json").read_text())
    assert len(plain) == len(with_context) == len(raw) >= 5
    assert all(i.contexts == [] for i in plain)
    assert all(i.contexts for i in with_context)
    assert {i.answer for i in plain} == {"yes", "no", "maybe"}
    assert all(set(i.options) == {"yes", "no", "maybe"} for i in plain)
    assert [i.id for i in plain] == [i.id for i in with_context]
    first = with_context[0]
    assert first.question == raw[first.id]["QUESTION"]
    assert first.contexts == raw[first.id]["CONTEXTS"]
    assert first.answer == raw[first.id]["final_decision"]


def test_limit_keeps_file_order(benchmarks: Path) -> None:
    assert [i.id for i in load_suite(Suite.MEDQA, benchmarks, limit=5)] == [
        i.id for i in load_suite(Suite.MEDQA, benchmarks)[:5]
    ]
    with pytest.raises(ValueError):
        load_suite(Suite.MEDQA, benchmarks, limit=0)


# --- the other official shapes -------------------------------------------------------------


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_medmcqa_original_cop_is_one_based(tmp_path: Path) -> None:
    rows = [
        {"id": "x1", "question": "Q1?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 1},
        {"id": "x2", "question": "Q2?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4},
        {"id": "x3", "question": "Q3?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": -1},
    ]
    items = load_file(Suite.MEDMCQA, _jsonl(tmp_path / "dev.jsonl", rows))
    assert [(i.id, i.answer) for i in items] == [("x1", "A"), ("x2", "D")]  # unlabelled row skipped


def test_medmcqa_hugging_face_cop_is_zero_based(tmp_path: Path) -> None:
    rows = [
        {"id": "y1", "question": "Q1?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 0},
        {"id": "y2", "question": "Q2?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 2},
    ]
    items = load_file(Suite.MEDMCQA, _jsonl(tmp_path / "validation.jsonl", rows))
    assert [i.answer for i in items] == ["A", "C"]


def test_mmlu_hugging_face_rows_and_original_csv(tmp_path: Path) -> None:
    hf = _jsonl(
        tmp_path / "hf.jsonl",
        [
            {
                "question": "Which bone?",
                "choices": ["Femur", "Tibia", "Ulna", "Radius"],
                "answer": 2,
                "subject": "anatomy",
            }
        ],
    )
    [item] = load_file(Suite.MMLU_MEDICAL, hf)
    assert item.options["C"] == "Ulna" and item.answer == "C" and item.id == "hf-0"
    csv_file = tmp_path / "anatomy_test.csv"
    csv_file.write_text('"Which bone, really?",Femur,Tibia,Ulna,Radius,D\n')
    [row] = load_file(Suite.MMLU_MEDICAL, csv_file)
    assert row.question == "Which bone, really?" and row.answer == "D" and row.options["D"] == "Radius"


def test_medxpertqa_official_label_field(tmp_path: Path) -> None:
    options = {letter: f"option {letter}" for letter in "ABCDEFGHIJ"}
    question = "Stem?\nAnswer Choices: " + " ".join(f"({k}) {v}" for k, v in options.items())
    path = _jsonl(
        tmp_path / "test.jsonl", [{"id": "Text-9", "question": question, "options": options, "label": "G"}]
    )
    [item] = load_file(Suite.MEDXPERTQA, path)
    assert item.question == "Stem?" and item.answer == "G" and item.id == "Text-9"


def test_pubmedqa_hugging_face_rows(tmp_path: Path) -> None:
    rows = [
        {
            "pubid": 123,
            "question": "Does X cause Y?",
            "context": {"contexts": ["c1", "c2"]},
            "final_decision": "no",
        }
    ]
    path = tmp_path / "pqal.json"
    path.write_text(json.dumps(rows))
    [item] = load_file(Suite.PUBMEDQA_CTX, path)
    assert (item.id, item.answer, item.contexts) == ("123", "no", ["c1", "c2"])


def test_inline_options_keep_parenthesised_letters_inside_an_option() -> None:
    stem, options = split_inline_options(
        "Which?\nAnswer Choices: (A) Vitamin (C) deficiency (B) Scurvy (C) Rickets"
    )
    assert stem == "Which?"
    assert options == {"A": "Vitamin (C) deficiency", "B": "Scurvy", "C": "Rickets"}


def test_split_picks_test_file_in_a_folder_of_splits(tmp_path: Path) -> None:
    folder = tmp_path / "medqa"
    folder.mkdir()
    row: dict[str, object] = {"question": "Q?", "options": {"A": "a", "B": "b"}, "answer_idx": "B"}
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl"):
        _jsonl(folder / name, [row])
    assert [f.name for f in resolve_data_files(Suite.MEDQA, tmp_path)] == ["test.jsonl"]


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no medqa data"):
        load_suite(Suite.MEDQA, tmp_path / "missing")
    not_json = tmp_path / "broken.jsonl"
    not_json.write_text('{"question": "Q?"\n')
    with pytest.raises(DatasetFormatError, match="line 1"):
        load_file(Suite.MEDQA, not_json)
    pubmed_as_medqa = tmp_path / "pqal.json"
    pubmed_as_medqa.write_text(json.dumps({"1": {"QUESTION": "Q?", "final_decision": "yes"}}))
    with pytest.raises(DatasetFormatError, match="no 'question' field"):
        load_file(Suite.MEDQA, pubmed_as_medqa)
    medqa_as_pubmed = _jsonl(
        tmp_path / "m.jsonl", [{"question": "Q?", "options": {"A": "a"}, "answer_idx": "A"}]
    )
    with pytest.raises(DatasetFormatError, match="no labelled pubmedqa"):
        load_file(Suite.PUBMEDQA, medqa_as_pubmed)
    duplicate = _jsonl(
        tmp_path / "dup.jsonl",
        [{"id": "same", "question": "Q?", "options": {"A": "a", "B": "b"}, "answer_idx": "A"}] * 2,
    )
    with pytest.raises(DatasetFormatError, match="duplicate item ids"):
        load_suite(Suite.MEDQA, duplicate)
