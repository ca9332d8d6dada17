"""Loaders for the official benchmark formats, all producing ``QAItem``.

Accepted shapes (the dev copies and the full official files):
- MedQA (jsonl): ``question``, ``options`` {A..D/E}, ``answer_idx``.
- PubMedQA PQA-L (json): {pmid: {QUESTION, CONTEXTS, final_decision}}; also the Hugging Face
  rows (``pubid``, ``question``, ``context.contexts``, ``final_decision``) as json or jsonl.
- MedMCQA (jsonl): options inlined in the question ("Answer Choices: (A) ... (B) ...") with
  ``label`` ["A"]; or the original rows ``opa``..``opd`` with ``cop`` (1-based in the original
  release, 0-based in the Hugging Face copy: detected per file).
- MMLU medical (jsonl ``options`` + ``answer_idx``; Hugging Face ``choices`` + integer ``answer``;
  or the original header-less CSV: question, A, B, C, D, answer).
- MedXpertQA (jsonl): ``options`` {A..J} and ``answer_idx`` or ``label``.
Rows without a usable answer (unlabelled test splits) are skipped and counted in the log.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from assistant.settings import Settings
from eval.qa.items import YES_NO_MAYBE, QAItem, Suite

log = logging.getLogger(__name__)

BENCHMARKS_ENV = "MEDKG_BENCHMARKS"
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".jsonl.gz", ".json.gz", ".csv.gz")
SUITE_FOLDERS: dict[Suite, str] = {
    Suite.MEDQA: "medqa",
    Suite.PUBMEDQA: "pubmedqa",
    Suite.PUBMEDQA_CTX: "pubmedqa",
    Suite.MEDMCQA: "medmcqa",
    Suite.MMLU_MEDICAL: "mmlu_medical",
    Suite.MEDXPERTQA: "medxpertqa",
}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CHOICES_HEADER = re.compile(r"\n?\s*Answer Choices\s*:\s*", re.IGNORECASE)
_INLINE_OPTION = re.compile(r"\(([A-Z])\)\s*")


class DatasetFormatError(ValueError):
    """The file is not in a format this suite's loader accepts (the message says why)."""


# ----------------------------------------------------------------------------- files


def default_benchmarks_dirs(settings: Settings) -> list[Path]:
    """Where to look when --data is not given: settings.benchmarks ($MEDKG_BENCHMARKS),
    <data_dir>/benchmarks, <shared_data>/benchmarks, then the shared dev copies beside a
    source checkout."""
    dirs = [settings.benchmarks] if settings.benchmarks is not None else []
    dirs.append(settings.data_dir / "benchmarks")
    if settings.shared_data is not None:
        dirs.append(settings.shared_data / "benchmarks")
    dirs.append(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks")
    return dirs


def _is_data_file(path: Path) -> bool:
    return path.is_file() and any(path.name.endswith(s) for s in DATA_SUFFIXES)


def _pick_split(files: list[Path]) -> list[Path]:
    """In a folder holding several splits, evaluate on test, else dev/validation, else all."""
    for words in (("test",), ("dev", "valid")):
        chosen = [f for f in files if any(w in f.name.lower() for w in words)]
        if chosen:
            return chosen
    return files


def resolve_data_files(suite: Suite, data: Path | None, search: Sequence[Path] = ()) -> list[Path]:
    """The files of one suite: ``data`` is a file, a suite folder, or a benchmarks root; without
    it, the first of ``search`` (``default_benchmarks_dirs``) that holds the suite."""
    candidates = [data] if data is not None else list(search)
    for path in candidates:
        if path.is_file():
            return [path]
        if not path.is_dir():
            continue
        folder = path / SUITE_FOLDERS[suite]
        folder = folder if folder.is_dir() else path
        files = sorted(f for f in folder.iterdir() if _is_data_file(f))
        if files:
            return _pick_split(files)
    where = str(data) if data is not None else ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"no {suite.value} data found in {where}; pass --data with the benchmark file "
        f"or a folder holding {SUITE_FOLDERS[suite]}/ (or set {BENCHMARKS_ENV})"
    )


def _read_text(path: Path) -> str:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def _read_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(fallback id, row) for every record of a json / jsonl / csv file."""
    text = _read_text(path)
    name = path.name.removesuffix(".gz")
    stem = Path(name).stem
    if name.endswith(".csv"):
        for n, cells in enumerate(csv.reader(io.StringIO(text))):
            if not cells:
                continue
            if len(cells) < 4:
                raise DatasetFormatError(f"{path} line {n + 1}: a CSV row needs question, options, answer")
            *options, answer = cells[1:]
            yield f"{stem}-{n}", {"question": cells[0], "choices": options, "answer": answer}
        return
    if name.endswith(".jsonl"):
        for n, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(f"{path} line {n + 1}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise DatasetFormatError(f"{path} line {n + 1}: expected a JSON object per line")
            yield f"{stem}-{n}", row
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(data, dict):
        for key, row in data.items():
            if not isinstance(row, dict):
                raise DatasetFormatError(f"{path}: entry {key!r} is not an object")
            yield str(key), row
    elif isinstance(data, list):
        for n, row in enumerate(data):
            if not isinstance(row, dict):
                raise DatasetFormatError(f"{path}: item {n} is not an object")
            yield f"{stem}-{n}", row
    else:
        raise DatasetFormatError(f"{path}: expected a JSON object or list at the top level")


# ----------------------------------------------------------------------------- fields


def split_inline_options(question: str) -> tuple[str, dict[str, str]]:
    """'stem\\nAnswer Choices: (A) x (B) y' -> ('stem', {'A': 'x', 'B': 'y'})."""
    parts = _CHOICES_HEADER.split(question, maxsplit=1)
    if len(parts) < 2:
        return question.strip(), {}
    stem, tail = parts
    pieces = _INLINE_OPTION.split(tail)
    options: dict[str, str] = {}
    expected = 0
    # pieces = [before, 'A', text, 'B', text, ...]; accept letters only in order, so an
    # option text that itself contains "(C)" stays part of its option.
    i = 1
    text_parts: list[str] = [pieces[0]] if pieces[0].strip() else []
    current: str | None = None
    while i < len(pieces):
        letter, text = pieces[i], pieces[i + 1]
        if letter == LETTERS[expected]:
            if current is not None:
                options[current] = " ".join(" ".join(text_parts).split())
            current, text_parts, expected = letter, [text], expected + 1
        else:
            text_parts.append(f"({letter}) {text}")
        i += 2
    if current is not None:
        options[current] = " ".join(" ".join(text_parts).split())
    return stem.strip(), options


def _options_of(row: dict[str, Any]) -> dict[str, str]:
    raw = row.get("options")
    if isinstance(raw, dict) and raw:
        return {str(k).strip().upper(): str(v).strip() for k, v in raw.items()}
    listed = raw if isinstance(raw, list) else row.get("choices")
    if isinstance(listed, list) and listed:
        return {LETTERS[i]: str(v).strip() for i, v in enumerate(listed)}
    lettered = {
        LETTERS[i]: str(row[key]).strip()
        for i, key in enumerate(("opa", "opb", "opc", "opd", "ope"))
        if row.get(key) not in (None, "")
    }
    if lettered:
        return lettered
    return split_inline_options(str(row.get("question", "")))[1]


def _answer_label(value: Any, options: dict[str, str], *, one_based: bool = False) -> str | None:
    """Map an answer field (letter, '(B)', ['B'], index, option text) to an option label."""
    if isinstance(value, list):
        return _answer_label(value[0], options, one_based=one_based) if len(value) == 1 else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        index = value - 1 if one_based else value
        labels = list(options)
        return labels[index] if 0 <= index < len(labels) else None
    text = str(value).strip()
    letter = text.strip("() .").upper()
    if letter in options:
        return letter
    if text.isdigit():
        return _answer_label(int(text), options, one_based=one_based)
    by_text = [k for k, v in options.items() if v.strip().lower() == text.lower()]
    return by_text[0] if len(by_text) == 1 else None


def _row_id(row: dict[str, Any], fallback: str) -> str:
    for key in ("realidx", "id", "pubid", "qid", "index"):
        if row.get(key) not in (None, ""):
            return str(row[key])
    return fallback


def _multiple_choice(
    suite: Suite, rows: Iterable[tuple[str, dict[str, Any]]], path: Path
) -> Iterator[QAItem | None]:
    rows = list(rows)
    # MedMCQA's `cop`: the original release counts from 1, the Hugging Face copy from 0.
    cops = [r["cop"] for _, r in rows if isinstance(r.get("cop"), int)]
    cop_one_based = bool(cops) and 0 not in cops
    for fallback, row in rows:
        if "question" not in row:
            raise DatasetFormatError(
                f"{path}: row {fallback} has no 'question' field (keys: {sorted(row)}); "
                f"is this a {suite.value} file?"
            )
        stem, _ = split_inline_options(str(row["question"]))
        options = _options_of(row)
        if len(options) < 2:
            raise DatasetFormatError(f"{path}: row {fallback} has no options")
        answer = None
        for key in ("answer_idx", "label", "cop", "answer"):
            if key in row and row[key] not in (None, "", -1, []):
                answer = _answer_label(row[key], options, one_based=key == "cop" and cop_one_based)
                if answer is not None:
                    break
        if answer is None:
            yield None
            continue
        yield QAItem(id=_row_id(row, fallback), suite=suite, question=stem, options=options, answer=answer)


def _pubmedqa(
    suite: Suite, rows: Iterable[tuple[str, dict[str, Any]]], path: Path
) -> Iterator[QAItem | None]:
    for key, row in rows:
        question = row.get("QUESTION", row.get("question"))
        if not question:
            raise DatasetFormatError(
                f"{path}: entry {key} has no QUESTION field (keys: {sorted(row)}); is this PubMedQA?"
            )
        contexts = row.get("CONTEXTS")
        if contexts is None and isinstance(row.get("context"), dict):
            contexts = row["context"].get("contexts")
        decision = str(row.get("final_decision", "")).strip().lower()
        if decision not in YES_NO_MAYBE:
            yield None
            continue
        item_id = str(row["pubid"]) if row.get("pubid") else key
        yield QAItem(
            id=item_id,
            suite=suite,
            question=str(question).strip(),
            options=dict(YES_NO_MAYBE),
            answer=decision,
            contexts=[str(c) for c in contexts or []] if suite is Suite.PUBMEDQA_CTX else [],
        )


def load_file(suite: Suite | str, path: Path) -> list[QAItem]:
    suite = Suite(suite)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    parse = _pubmedqa if suite.yes_no_maybe else _multiple_choice
    items: list[QAItem] = []
    skipped = 0
    for item in parse(suite, _read_rows(path), path):
        if item is None:
            skipped += 1
        else:
            items.append(item)
    if skipped:
        log.warning("%s: skipped %d rows without a usable answer label", path.name, skipped)
    if not items:
        raise DatasetFormatError(f"{path}: no labelled {suite.value} items found")
    return items


def load_suite(
    suite: Suite | str,
    data: Path | None = None,
    *,
    limit: int | None = None,
    search: Sequence[Path] = (),
) -> list[QAItem]:
    """All items of a suite (the first ``limit`` in file order), with unique ids."""
    suite = Suite(suite)
    files = resolve_data_files(suite, data, search)
    items: list[QAItem] = []
    for path in files:
        loaded = load_file(suite, path)
        if len(files) > 1:
            stem = path.name.split(".")[0]
            loaded = [i.model_copy(update={"id": f"{stem}:{i.id}"}) for i in loaded]
        items.extend(loaded)
    counts = Counter(i.id for i in items)
    duplicates = {item_id for item_id, n in counts.items() if n > 1}
    if duplicates:
        raise DatasetFormatError(
            f"{suite.value}: duplicate item ids ({len(duplicates)}, e.g. {sorted(duplicates)[:3]}); "
            "the cache needs unique ids"
        )
    if limit is not None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        items = items[:limit]
    return items
