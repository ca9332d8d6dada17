"""Build the DDXPlus files shipped in kg/data from the DDXPlus releases (run by maintainers).

    python -m kg.ddxplus.build --english DIR --train DIR [--out kg/data]

``--english``: the English release's ``release_evidences.json`` / ``release_conditions.json``;
``--train``: the training-split material (``../shared/data/kg/ddxplus/train``: the French
release definitions, P(value | condition) computed from training-split patients, and training
patient samples). Never a validation or test file. Writes:

- ``ddxplus_french_codes.tsv``: French release codes -> English codes (evidences matched on
  their French question text, values on their (English, French) meaning pair).
- ``ddxplus_train_stats.tsv``: P(finding | condition) for the 49 conditions, English codes,
  one row per binary evidence, categorical value and scale level (see ``estimate`` below).

Deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from kg.ddxplus.release import FrenchCodes, codes_from_rows
from kg.models import VALUE_SEPARATOR

# Values the statistics give ~1e-7 ("never seen in training") are dropped: the graph's leak
# covers them.
MIN_STAT = 1e-4
# Multi-choice values (pain locations...) are listed together, so their P(value present) is
# not the per-mention share the statistics give; it is estimated from training patients,
# shrunk toward the pooled inclusion rate by this many pseudo-patients.
MULTI_PSEUDO_PATIENTS = 3.0
TRAIN_PATIENT_FILES = ("train_sample_en_500.csv", "train_fewshot_fr_98.csv")


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def french_code_rows(english_dir: Path, train_dir: Path) -> list[tuple[str, ...]]:
    en = _load(english_dir / "release_evidences.json")
    fr = _load(train_dir / "release_evidences_fr.json")
    by_question = {e["question_fr"]: eid for eid, e in en.items()}
    rows: list[tuple[str, ...]] = []
    for fr_name, item in sorted(fr.items()):
        eid = by_question.get(item["question_fr"])
        if eid is None:
            raise ValueError(f"French evidence {fr_name!r} has no English counterpart")
        rows.append(("evidence", fr_name, eid))
        meanings = {(m["en"], m["fr"]): code for code, m in en[eid].get("value_meaning", {}).items()}
        for fr_value, meaning in sorted(item.get("value_meaning", {}).items()):
            code = meanings.get((meaning["en"], meaning["fr"]))
            if code is None:
                raise ValueError(f"value {fr_value!r} of {fr_name!r} has no English counterpart")
            rows.append(("value", fr_value, code, eid))
    for key, cond in sorted(_load(english_dir / "release_conditions.json").items()):
        rows.append(("condition", cond["cond-name-fr"], key))
    return rows


def _train_patients(train_dir: Path, codes: FrenchCodes) -> Iterator[tuple[str, set[str]]]:
    """(English condition key, English evidence codes) of each training patient."""
    for name in TRAIN_PATIENT_FILES:
        with (train_dir / name).open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                evidences = {codes.evidence(str(c)) for c in ast.literal_eval(row["EVIDENCES"])}
                yield codes.condition(row["PATHOLOGY"]), evidences


def train_stat_rows(english_dir: Path, train_dir: Path) -> list[tuple[str, str, str, str]]:
    """(condition, finding, p, estimate) rows; ``estimate`` says how p was obtained:

    - ``binary``: P(evidence present | condition) from the statistics;
    - ``share``: a single-choice value or scale level, P(value | condition) from the statistics
      (the default value, e.g. intensity 0 or travel "N", is the evidence's absence);
    - ``records``: a multi-choice evidence (present unless only its default was seen) and each
      value the statistics saw for the condition, P(value present | condition) from training
      patients (k + m q) / (n + m), with q the pooled rate
      of a possible value being listed and m = MULTI_PSEUDO_PATIENTS; a value possible for the
      condition but never listed by the sample gets the prior mass only.
    """
    french = codes_from_rows(french_code_rows(english_dir, train_dir))
    codes, values, conditions = french.evidences, french.values, french.conditions
    en = _load(english_dir / "release_evidences.json")
    stats = _load(train_dir / "train_stats_value_given_condition_fr.json")

    patients: dict[str, list[set[str]]] = defaultdict(list)
    for pathology, evidences in _train_patients(train_dir, french):
        patients[pathology].append(evidences)

    # Support of each multi-choice evidence per condition.
    support: dict[tuple[str, str], list[str]] = {}
    for fr_cond, entry in stats.items():
        cond = conditions[fr_cond]
        for fr_ev, dist in entry["findings"].items():
            eid = codes[fr_ev]
            if en[eid]["data_type"] == "M" and isinstance(dist, dict):
                default = en[eid]["default_value"]
                seen = {
                    code
                    for v, p in dist.items()
                    if p >= MIN_STAT and (code := values.get((eid, str(v)), str(v))) != default
                }
                # The statistics miss values training patients do list (Chagas: pain at the back
                # of the head in 3 of 6): a value listed by a training patient is possible too.
                prefix = f"{eid}{VALUE_SEPARATOR}"
                listed = {
                    c.removeprefix(prefix) for r in patients.get(cond, []) for c in r if c.startswith(prefix)
                }
                support[(cond, eid)] = sorted((seen | listed) - {default})
    pooled_k = pooled_n = 0
    for (cond, eid), vals in support.items():
        for record in patients.get(cond, []):
            if any(f"{eid}{VALUE_SEPARATOR}{v}" in record for v in vals):
                pooled_n += len(vals)
                pooled_k += sum(f"{eid}{VALUE_SEPARATOR}{v}" in record for v in vals)
    pooled = pooled_k / pooled_n if pooled_n else 0.5

    rows: list[tuple[str, str, str, str]] = []
    for fr_cond, entry in sorted(stats.items()):
        cond = conditions[fr_cond]
        rows.append((cond, "prior", _fmt(entry["prior"]), "prior"))
        records = patients.get(cond, [])
        for fr_ev, dist in sorted(entry["findings"].items()):
            eid = codes[fr_ev]
            kind = en[eid]["data_type"]
            if not isinstance(dist, dict):
                rows.append((cond, eid, _fmt(dist), "binary"))
                continue
            default = str(en[eid]["default_value"])
            mapped = {values.get((eid, str(v)), str(v)): float(p) for v, p in dist.items()}
            if kind == "C":
                present = 1.0 - mapped.get(default, 0.0)
                rows.append((cond, eid, _fmt(present), "share"))
                if len(en[eid]["possible-values"]) < 3:  # yes/no-like: presence says it all
                    continue
                for code, p in sorted(mapped.items(), key=_value_key):
                    if code != default and p >= MIN_STAT:
                        rows.append((cond, f"{eid}{VALUE_SEPARATOR}{code}", _fmt(p), "share"))
                continue
            named = {
                f"{eid}{VALUE_SEPARATOR}{code}" for code in en[eid]["possible-values"] if code != default
            }
            listing = [r for r in records if r & named]
            present = 1.0 - mapped.get(default, 0.0) if support.get((cond, eid)) else 0.0
            rows.append((cond, eid, _fmt(present), "records"))
            for code in support.get((cond, eid), []):
                k = sum(f"{eid}{VALUE_SEPARATOR}{code}" in r for r in listing)
                q = (k + MULTI_PSEUDO_PATIENTS * pooled) / (len(listing) + MULTI_PSEUDO_PATIENTS)
                rows.append((cond, f"{eid}{VALUE_SEPARATOR}{code}", _fmt(present * q), "records"))
    return rows


def _value_key(item: tuple[str, float]) -> tuple[int, str]:
    code = item[0]
    return (int(code), "") if code.isdigit() else (10_000, code)


def _fmt(p: float) -> str:
    return f"{min(max(float(p), 0.0), 1.0):.4f}"


def write_tsv(path: Path, header: Iterable[str], rows: Iterable[tuple[str, ...]]) -> None:
    lines = [*header, *("\t".join(row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--english", type=Path, required=True, help="English release definitions")
    parser.add_argument("--train", type=Path, required=True, help="training-split material")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    args = parser.parse_args(argv)
    write_tsv(
        args.out / "ddxplus_french_codes.tsv",
        [
            "# DDXPlus French-release codes -> English-release codes (built by kg/ddxplus/build.py from",
            "# the releases' definition files; DDXPlus data CC BY 4.0, Fansi Tchango et al., NeurIPS 2022).",
            "# kind\tfrench\tenglish\t(value rows: the English evidence id)",
        ],
        french_code_rows(args.english, args.train),
    )
    write_tsv(
        args.out / "ddxplus_train_stats.tsv",
        [
            "# P(finding | condition) for the 49 DDXPlus conditions from DDXPlus TRAINING-split",
            "# patients (never validation or test). Source: P(value | condition) statistics computed",
            "# from the training split by the BED baseline of mila-iqia/Casande-RL (MIT code; DDXPlus",
            "# data CC BY 4.0, Fansi Tchango, Goel, Wen, Martel, Ghosn: DDXPlus, NeurIPS 2022 Datasets",
            "# and Benchmarks), converted to English release codes, multi-choice values re-estimated",
            "# on 598 training patients. Built by kg/ddxplus/build.py; loaded as HAS_FINDING links",
            "# with source ddxplus-train-stats.",
            "# condition\tfinding\tp\testimate",
        ],
        train_stat_rows(args.english, args.train),
    )


if __name__ == "__main__":
    main()
