"""Patients in the official DDXPlus CSV format: reading (.csv, .gz, .zip) and writing.

Columns: AGE, SEX, PATHOLOGY, EVIDENCES (a Python-list string of evidence codes, with
``_@_value`` for categorical and multi-choice ones, e.g. ``E_55_@_V_89``, ``E_56_@_7``),
INITIAL_EVIDENCE, DIFFERENTIAL_DIAGNOSIS (a Python-list string of ``[pathology, probability]``).
The official test set has ~134k rows, so reading streams and stops at ``limit``. Files of the
original French release (codes like ``douleurxx_endroitducorps_@_pharynx``, French pathology
names) are read too: their codes are translated to the English release's.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from kg.ddxplus.release import french_codes
from kg.models import VALUE_SEPARATOR

REQUIRED_COLUMNS = ("AGE", "SEX", "PATHOLOGY", "EVIDENCES", "INITIAL_EVIDENCE", "DIFFERENTIAL_DIAGNOSIS")
# The order of the official release files.
COLUMN_ORDER = ("AGE", "DIFFERENTIAL_DIAGNOSIS", "SEX", "PATHOLOGY", "EVIDENCES", "INITIAL_EVIDENCE")


class PatientFileError(ValueError):
    """The patients file cannot be read as DDXPlus CSV (the message names the file and row)."""


@dataclass(frozen=True)
class Patient:
    id: str
    age: int
    sex: Literal["M", "F"]
    pathology: str
    evidences: tuple[str, ...]  # raw codes as in the file
    initial_evidence: str
    differential: tuple[tuple[str, float], ...]

    def evidence_values(self) -> dict[str, list[str]]:
        """Base evidence id -> its values (empty list for a binary evidence)."""
        values: dict[str, list[str]] = {}
        for code in self.evidences:
            base, value = split_evidence(code)
            bucket = values.setdefault(base, [])
            if value is not None and value not in bucket:
                bucket.append(value)
        return values


def split_evidence(code: str) -> tuple[str, str | None]:
    """``"E_55_@_V_89"`` -> ``("E_55", "V_89")``; ``"E_91"`` -> ``("E_91", None)``."""
    base, sep, value = code.partition(VALUE_SEPARATOR)
    return base.strip(), (value.strip() if sep else None)


def _literal_list(text: str, column: str) -> list[object]:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"{column} is not a Python list literal: {text[:80]!r}") from exc
    if not isinstance(value, list | tuple):
        raise ValueError(f"{column} is not a list: {text[:80]!r}")
    return list(value)


def parse_evidences(text: str) -> tuple[str, ...]:
    items = _literal_list(text, "EVIDENCES")
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise ValueError("EVIDENCES must hold evidence codes as strings")
    return tuple(str(item).strip() for item in items)


def parse_differential(text: str) -> tuple[tuple[str, float], ...]:
    if not text.strip():
        return ()
    pairs: list[tuple[str, float]] = []
    for item in _literal_list(text, "DIFFERENTIAL_DIAGNOSIS"):
        if not (isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise ValueError(f"DIFFERENTIAL_DIAGNOSIS entries must be [pathology, probability], got {item!r}")
        try:
            probability = float(item[1])  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"DIFFERENTIAL_DIAGNOSIS probability is not a number: {item!r}") from exc
        pairs.append((item[0], probability))
    return tuple(sorted(pairs, key=lambda p: -p[1]))


def parse_row(row: dict[str, str], row_id: str) -> Patient:
    try:
        age = int(float(row["AGE"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"AGE is not a number: {row.get('AGE')!r}") from exc
    sex = (row["SEX"] or "").strip().upper()
    if sex not in ("M", "F"):
        raise ValueError(f"SEX must be M or F, got {row.get('SEX')!r}")
    pathology = (row["PATHOLOGY"] or "").strip()
    if not pathology:
        raise ValueError("PATHOLOGY is empty")
    initial = (row["INITIAL_EVIDENCE"] or "").strip()
    if not initial:
        raise ValueError("INITIAL_EVIDENCE is empty")
    codes = french_codes()  # the original French release's codes read as the English ones
    evidences = tuple(codes.evidence(c) for c in parse_evidences(row["EVIDENCES"] or "[]"))
    initial = codes.evidence(initial)
    return Patient(
        id=row_id,
        age=max(0, min(age, 130)),
        sex=sex,  # type: ignore[arg-type]
        pathology=pathology,
        evidences=evidences,
        initial_evidence=initial,
        differential=parse_differential(row["DIFFERENTIAL_DIAGNOSIS"] or ""),
    )


def _open_text(path: Path) -> Iterator[TextIO]:
    """Yield one text stream: a plain CSV, a gzip, or the first data member of a zip."""
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/") and "__MACOSX" not in m]
            if not members:
                raise PatientFileError(f"{path}: the zip archive holds no file")
            # The official archives hold one extension-less CSV; prefer *.csv when there are several.
            member = next((m for m in members if m.lower().endswith(".csv")), members[0])
            with archive.open(member) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8", newline="")
    elif name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            yield handle
    else:
        with open(path, encoding="utf-8", newline="") as handle:
            yield handle


def iter_patients(path: Path | str, limit: int | None = None) -> Iterator[Patient]:
    """Stream patients from an official-format file; raise PatientFileError naming the bad row."""
    path = Path(path)
    if not path.is_file():
        raise PatientFileError(f"patients file not found: {path}")
    try:
        for handle in _open_text(path):
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or ())
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise PatientFileError(
                    f"{path}: not a DDXPlus patients file, missing column(s) {', '.join(missing)} "
                    f"(found {', '.join(sorted(columns)) or 'none'})"
                )
            for index, row in enumerate(reader):
                if limit is not None and index >= limit:
                    return
                try:
                    yield parse_row(row, f"{path.stem}:{index + 1}")
                except (ValueError, KeyError) as exc:
                    raise PatientFileError(f"{path}, data row {index + 1}: {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, csv.Error) as exc:
        raise PatientFileError(f"{path}: cannot read ({exc})") from exc


def read_patients(path: Path | str, limit: int | None = None) -> list[Patient]:
    return list(iter_patients(path, limit))


def format_row(patient: Patient) -> dict[str, str]:
    return {
        "AGE": str(patient.age),
        "DIFFERENTIAL_DIAGNOSIS": repr([[name, prob] for name, prob in patient.differential]),
        "SEX": patient.sex,
        "PATHOLOGY": patient.pathology,
        "EVIDENCES": repr(list(patient.evidences)),
        "INITIAL_EVIDENCE": patient.initial_evidence,
    }


def write_patients(path: Path | str, patients: Iterable[Patient]) -> int:
    """Write patients in the official column order; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    count = 0
    with opener(path, "wt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        writer = csv.DictWriter(handle, fieldnames=list(COLUMN_ORDER))
        writer.writeheader()
        for patient in patients:
            writer.writerow(format_row(patient))
            count += 1
    return count
