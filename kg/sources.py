"""Readers for the source files shipped in ``kg/data`` (one function per source, plain records).

The readers only parse; merging concepts across sources is ``kg.merge``'s job.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"

SOURCE_FILES: dict[str, tuple[str, ...]] = {
    "ddxplus": (
        "ddxplus_conditions.json.gz",
        "ddxplus_evidences.json.gz",
        "ddxplus_finding_names.tsv",
        "ddxplus_condition_synonyms.tsv",
    ),
    "symcat": ("symcat_conditions.json.gz", "symcat_symptoms.json.gz"),
    "doid": ("doid.obo.gz",),
    "symp": ("symp.obo.gz",),
    "pharmacotherapydb": ("pharmacotherapydb_indications.tsv",),
    "curation": ("red_flags.tsv",),
    "curated-values": ("value_knowledge.tsv", "finding_equivalences.tsv"),
    "ddxplus-train-stats": ("ddxplus_train_stats.tsv",),
}

SOURCE_INFO: dict[str, dict[str, str]] = {
    "ddxplus": {
        "name": "DDXPlus",
        "version": "release 2022 (figshare v4)",
        "license": "CC-BY-4.0",
        "url": "https://figshare.com/articles/dataset/DDXPlus_Dataset_English_/22687585",
    },
    "symcat": {
        "name": "SymCat",
        "version": "symcat-to-synthea scrape",
        "license": "SymCat terms (CDC NAMCS/NHAMCS derived); attribution kept",
        "url": "https://github.com/teliov/symcat-to-synthea",
    },
    "doid": {
        "name": "Human Disease Ontology",
        "version": "2016-09-01",
        "license": "CC0-1.0",
        "url": "https://disease-ontology.org",
    },
    "symp": {
        "name": "Symptom Ontology",
        "version": "2016",
        "license": "CC0-1.0",
        "url": "https://disease-ontology.org",
    },
    "pharmacotherapydb": {
        "name": "PharmacotherapyDB",
        "version": "1.0",
        "license": "CC0-1.0",
        "url": "https://github.com/dhimmel/indications",
    },
    "curated-values": {
        "name": "medkg value curation",
        "version": "1",
        "license": "Apache-2.0 (medkg)",
        "url": "https://github.com/medkg/medkg",
    },
    "ddxplus-train-stats": {
        "name": "DDXPlus training-split statistics",
        "version": "Casande-RL BED stats 4 + 598 training patients",
        "license": "CC-BY-4.0 (DDXPlus data); MIT (Casande-RL code)",
        "url": "https://github.com/mila-iqia/Casande-RL",
    },
    "curation": {
        "name": "medkg curation",
        "version": "1",
        "license": "Apache-2.0 (medkg)",
        "url": "https://github.com/medkg/medkg",
    },
}


def _open_text(name: str) -> str:
    path = DATA_DIR / name
    if name.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return handle.read()
    return path.read_text(encoding="utf-8")


def _read_json(name: str) -> Any:
    return json.loads(_open_text(name))


def _tsv_rows(name: str) -> Iterator[list[str]]:
    for line in _open_text(name).splitlines():
        if line.strip() and not line.startswith("#"):
            yield line.rstrip("\n").split("\t")


@cache
def source_checksums() -> dict[str, str]:
    """SHA-256 (first 16 hex) of each source's files, so a changed file changes the graph version."""
    sums: dict[str, str] = {}
    for source, files in SOURCE_FILES.items():
        digest = hashlib.sha256()
        for name in files:
            digest.update(name.encode())
            digest.update((DATA_DIR / name).read_bytes())
        sums[source] = digest.hexdigest()[:16]
    return sums


def normalize_name(text: str) -> str:
    """A case-, accent- and punctuation-insensitive key for matching names across sources.

    Accents are dropped ("Guillain-Barré" -> "guillain barre"), a possessive "'s" joins its
    word ("Crohn's disease" -> "crohns disease"), anything else not a letter or digit is a space.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    text = text.replace("'s ", "s ").replace("’s ", "s ")
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


# ----------------------------------------------------------------------------- DDXPlus
@dataclass
class DdxEvidence:
    id: str
    name: str
    kind: str
    synonyms: list[str]
    question: str
    parent: str | None  # the gate question ("do you have pain?") a detail question hangs on
    data_type: str  # B, C or M
    default_value: str | None
    values: dict[str, str]  # value code -> English meaning (non-binary only)


@dataclass
class DdxCondition:
    key: str
    name: str
    name_fr: str
    icd10: list[str]
    severity: int
    symptoms: list[str]
    antecedents: list[str]
    synonyms: list[str] = field(default_factory=list)


def _value_meaning(raw: dict[str, Any], code: Any) -> str:
    meaning = raw.get("value_meaning", {}).get(str(code))
    if meaning:
        english = str(meaning.get("en", code))
        return {"N": "no", "Y": "yes", "NA": "not applicable"}.get(english, english)
    return str(code)


@cache
def ddxplus_evidences() -> dict[str, DdxEvidence]:
    raw: dict[str, dict[str, Any]] = _read_json("ddxplus_evidences.json.gz")
    names = {row[0]: row for row in _tsv_rows("ddxplus_finding_names.tsv")}
    missing = sorted(set(raw) - set(names))
    if missing:
        raise ValueError(f"ddxplus_finding_names.tsv lacks names for {missing}")
    evidences: dict[str, DdxEvidence] = {}
    for eid, item in raw.items():
        row = names[eid]
        data_type = str(item["data_type"])
        values: dict[str, str] = {}
        if data_type in ("C", "M"):
            values = {str(code): _value_meaning(item, code) for code in item.get("possible-values", [])}
        parent = str(item.get("code_question") or eid)
        evidences[eid] = DdxEvidence(
            id=eid,
            name=row[1],
            kind=row[2],
            synonyms=[s for s in (row[3].split("|") if len(row) > 3 else []) if s],
            question=str(item.get("question_en") or ""),
            parent=parent if parent != eid else None,
            data_type=data_type,
            default_value=None if data_type == "B" else str(item.get("default_value")),
            values=values,
        )
    return evidences


def _icd_codes(raw: str) -> list[str]:
    return [code.strip().upper() for code in raw.split(",") if code.strip()]


@cache
def ddxplus_conditions() -> dict[str, DdxCondition]:
    raw: dict[str, dict[str, Any]] = _read_json("ddxplus_conditions.json.gz")
    synonyms = {
        row[0]: [s for s in row[1].split("|") if s] for row in _tsv_rows("ddxplus_condition_synonyms.tsv")
    }
    conditions: dict[str, DdxCondition] = {}
    for key, item in raw.items():
        conditions[key] = DdxCondition(
            key=key,
            name=str(item.get("cond-name-eng") or item["condition_name"]),
            name_fr=str(item.get("cond-name-fr") or ""),
            icd10=_icd_codes(str(item.get("icd10-id") or "")),
            severity=int(item["severity"]),
            symptoms=list(item.get("symptoms", {})),
            antecedents=list(item.get("antecedents", {})),
            synonyms=synonyms.get(key, []),
        )
    return conditions


# ----------------------------------------------------------------------------- SymCat
@dataclass
class SymcatSymptom:
    slug: str
    name: str
    description: str


@dataclass
class SymcatCondition:
    slug: str
    name: str
    description: str
    remarks: str
    symptoms: dict[str, float]  # symptom slug -> P(symptom | condition) in [0, 1]
    age_odds: dict[str, float]  # age band slug -> odds ratio
    sex_odds: dict[str, float]  # "M"/"F" -> odds ratio


@cache
def symcat_symptoms() -> dict[str, SymcatSymptom]:
    raw: dict[str, dict[str, Any]] = _read_json("symcat_symptoms.json.gz")
    return {
        slug: SymcatSymptom(slug=slug, name=str(item["name"]), description=str(item.get("description") or ""))
        for slug, item in raw.items()
    }


@cache
def symcat_conditions() -> dict[str, SymcatCondition]:
    raw: dict[str, dict[str, Any]] = _read_json("symcat_conditions.json.gz")
    conditions: dict[str, SymcatCondition] = {}
    for slug, item in raw.items():
        sex = item.get("sex", {})
        conditions[slug] = SymcatCondition(
            slug=slug,
            name=str(item["condition_name"]),
            description=str(item.get("condition_description") or ""),
            remarks=str(item.get("condition_remarks") or ""),
            symptoms={s: float(v["probability"]) / 100.0 for s, v in item.get("symptoms", {}).items()},
            age_odds={band: float(v["odds"]) for band, v in item.get("age", {}).items()},
            sex_odds={
                "M": float(sex.get("sex-male", {}).get("odds", 1.0)),
                "F": float(sex.get("sex-female", {}).get("odds", 1.0)),
            },
        )
    return conditions


# SymCat's age bands, as (slug, lowest age, highest age).
AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("age-1-years", 0, 0),
    ("age-1-4-years", 1, 4),
    ("age-5-14-years", 5, 14),
    ("age-15-29-years", 15, 29),
    ("age-30-44-years", 30, 44),
    ("age-45-59-years", 45, 59),
    ("age-60-74-years", 60, 74),
    ("age-75-years", 75, 200),
)


def age_band_index(age: int) -> int:
    for index, (_, low, high) in enumerate(AGE_BANDS):
        if low <= age <= high:
            return index
    return len(AGE_BANDS) - 1


# ----------------------------------------------------------------------------- OBO (DOID, SYMP)
@dataclass
class OboTerm:
    id: str
    name: str
    definition: str = ""
    synonyms: list[str] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    obsolete: bool = False


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _parse_obo(text: str) -> dict[str, OboTerm]:
    terms: dict[str, OboTerm] = {}
    current: OboTerm | None = None
    in_term = False
    for line in text.splitlines():
        if line.startswith("["):
            if current is not None and not current.obsolete:
                terms[current.id] = current
            current, in_term = None, line.strip() == "[Term]"
            continue
        if not in_term or ":" not in line:
            continue
        tag, _, value = line.partition(": ")
        value = value.strip()
        if tag == "id":
            current = OboTerm(id=value, name="")
        elif current is None:
            continue
        elif tag == "name":
            current.name = value
        elif tag == "def":
            match = _QUOTED.match(value)
            current.definition = match.group(1).replace('\\"', '"') if match else value
        elif tag == "synonym":
            match = _QUOTED.match(value)
            if match and ("EXACT" in value or "RELATED" not in value):
                current.synonyms.append(match.group(1).strip())
        elif tag == "xref":
            current.xrefs.append(value.split(" ")[0])
        elif tag == "is_a":
            current.parents.append(value.split(" ")[0])
        elif tag == "is_obsolete" and value == "true":
            current.obsolete = True
    if current is not None and not current.obsolete:
        terms[current.id] = current
    return terms


@cache
def doid_terms() -> dict[str, OboTerm]:
    return _parse_obo(_open_text("doid.obo.gz"))


@cache
def symp_terms() -> dict[str, OboTerm]:
    return _parse_obo(_open_text("symp.obo.gz"))


# ----------------------------------------------------------------------------- PharmacotherapyDB
@dataclass
class Indication:
    doid: str
    drugbank_id: str
    disease: str
    drug: str
    category: str  # DM disease-modifying, SYM symptomatic, NOT non-indication


INDICATION_KINDS = {"DM": "disease_modifying", "SYM": "symptomatic", "NOT": "non_indication"}


@cache
def indications() -> list[Indication]:
    rows = list(_tsv_rows("pharmacotherapydb_indications.tsv"))
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    return [
        Indication(
            doid=r[col["doid_id"]],
            drugbank_id=r[col["drugbank_id"]],
            disease=r[col["disease"]],
            drug=r[col["drug"]],
            category=r[col["category"]],
        )
        for r in body
    ]


# ----------------------------------------------------------------------------- curation
@cache
def red_flags() -> dict[str, str]:
    """Finding id (E_xx) or symptom name -> why it is a red flag."""
    return {row[0]: row[1] for row in _tsv_rows("red_flags.tsv")}


# ----------------------------------------------------------------------------- DDXPlus statistics
@dataclass
class DdxTrainStats:
    """P(finding | condition) from DDXPlus training patients, per English condition key."""

    priors: dict[str, float]
    links: dict[str, dict[str, float]]  # condition key -> finding id (E_xx, E_xx_@_V_yy) -> p


@cache
def ddxplus_train_stats() -> DdxTrainStats:
    priors: dict[str, float] = {}
    links: dict[str, dict[str, float]] = {}
    for condition, finding, p, *_ in _tsv_rows("ddxplus_train_stats.tsv"):
        if finding == "prior":
            priors[condition] = float(p)
        else:
            links.setdefault(condition, {})[finding] = float(p)
    return DdxTrainStats(priors=priors, links=links)


# ----------------------------------------------------------------------------- curated values
@dataclass(frozen=True)
class CuratedValue:
    """One reviewed row of value_knowledge.tsv: P(condition's patient reports this value)."""

    condition: str  # DDXPlus condition key, or "symcat:<slug>"
    evidence: str
    value: str  # a value code, a scale level "7" or an inclusive range "6-9"
    p: float
    rationale: str

    def levels(self) -> list[tuple[str, float]]:
        """(value code, p) per value: a scale range spreads its p evenly over its levels."""
        low, sep, high = self.value.partition("-")
        if sep and low.isdigit() and high.isdigit():
            codes = [str(level) for level in range(int(low), int(high) + 1)]
            return [(code, self.p / len(codes)) for code in codes]
        return [(self.value, self.p)]


@dataclass(frozen=True)
class FindingEquivalence:
    """A SymCat symptom meaning the same as a DDXPlus finding (sore throat = pain in the pharynx)."""

    symcat_symptom: str
    finding: str
    rationale: str


@cache
def curated_values() -> list[CuratedValue]:
    rows = [row for row in _tsv_rows("value_knowledge.tsv") if row[0] != "condition"]
    return [CuratedValue(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]


@cache
def finding_equivalences() -> list[FindingEquivalence]:
    rows = [row for row in _tsv_rows("finding_equivalences.tsv") if row[0] != "symcat_symptom"]
    return [FindingEquivalence(r[0], r[1], r[2]) for r in rows]
