"""The DDXPlus condition and evidence definitions shipped with medkg (English release, CC BY 4.0).

Used to read official patient files (pathology names in English or French, evidence default
values), to phrase simulated answers, and to generate simulated patients.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from kg.sources import normalize_name

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
EvidenceType = Literal["B", "C", "M"]


@dataclass(frozen=True)
class EvidenceDef:
    id: str
    question: str
    data_type: EvidenceType
    is_antecedent: bool
    code_question: str  # the evidence that must be present for this one to be asked
    default_value: str | None
    possible_values: tuple[str, ...]
    # value code -> English meaning ("" when the code is the meaning, e.g. a 0-10 scale)
    value_meaning: dict[str, str] = field(default_factory=dict)

    def meaning(self, value: str) -> str:
        text = self.value_meaning.get(value, "")
        return text if text and text != "NA" else value

    @property
    def is_scale(self) -> bool:
        return bool(self.possible_values) and all(v.isdigit() for v in self.possible_values)


@dataclass(frozen=True)
class ConditionDef:
    name: str  # `condition_name`, what the English release writes in PATHOLOGY
    name_en: str
    name_fr: str
    icd10: str
    severity: int
    symptoms: tuple[str, ...]
    antecedents: tuple[str, ...]

    @property
    def evidences(self) -> tuple[str, ...]:
        return self.symptoms + self.antecedents


class DDXPlusDefinitions:
    def __init__(self, conditions: dict[str, ConditionDef], evidences: dict[str, EvidenceDef]) -> None:
        self.conditions = conditions
        self.evidences = evidences
        self._by_name: dict[str, ConditionDef] = {}
        for cond in conditions.values():
            for name in (cond.name, cond.name_en, cond.name_fr):
                self._by_name.setdefault(normalize_name(name), cond)

    def condition(self, pathology: str) -> ConditionDef | None:
        """The condition a PATHOLOGY string names (English `condition_name` or French name)."""
        return self._by_name.get(normalize_name(pathology))

    def is_default(self, evidence_id: str, value: str | None) -> bool:
        """True when a value means 'not present' (DDXPlus: the default value is as if not synthesized)."""
        ev = self.evidences.get(evidence_id)
        if ev is None or value is None or ev.data_type == "B":
            return False
        return ev.default_value is not None and value == ev.default_value


def _read_json(path: Path) -> Any:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def parse_definitions(conditions: dict[str, Any], evidences: dict[str, Any]) -> DDXPlusDefinitions:
    evs: dict[str, EvidenceDef] = {}
    for key, raw in evidences.items():
        default = raw.get("default_value")
        evs[key] = EvidenceDef(
            id=str(raw.get("name", key)),
            question=str(raw.get("question_en", "")),
            data_type=raw.get("data_type", "B"),
            is_antecedent=bool(raw.get("is_antecedent", False)),
            code_question=str(raw.get("code_question", key)),
            default_value=None if default is None or raw.get("data_type") == "B" else str(default),
            possible_values=tuple(str(v) for v in raw.get("possible-values", [])),
            value_meaning={str(k): str(v.get("en", "")) for k, v in raw.get("value_meaning", {}).items()},
        )
    conds: dict[str, ConditionDef] = {}
    for key, raw in conditions.items():
        conds[key] = ConditionDef(
            name=str(raw.get("condition_name", key)),
            name_en=str(raw.get("cond-name-eng", key)),
            name_fr=str(raw.get("cond-name-fr", key)),
            icd10=str(raw.get("icd10-id", "")),
            severity=int(raw.get("severity", 5)),
            symptoms=tuple(raw.get("symptoms", {})),
            antecedents=tuple(raw.get("antecedents", {})),
        )
    return DDXPlusDefinitions(conditions=conds, evidences=evs)


@lru_cache(maxsize=1)
def load_definitions() -> DDXPlusDefinitions:
    """The shipped English-release definitions (kg/data, CC BY 4.0; see kg/data/SOURCES.md)."""
    return parse_definitions(
        _read_json(DATA_DIR / "ddxplus_conditions.json.gz"),
        _read_json(DATA_DIR / "ddxplus_evidences.json.gz"),
    )
