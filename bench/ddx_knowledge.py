"""What each knowledge source does to the graph policy: the scoring model built straight from the
shipped sources (no graph server), once per set of knowledge packs, on the same patients.

    .venv/bin/python bench/ddx_knowledge.py [--patients FILE ...] [--limit N] [--out JSON]

Default patients: the shipped simulated ones plus, when ``../shared/data`` is there, the DDXPlus
validation patients (French release codes, read through kg.ddxplus.release). Same simulator,
metrics and stop rule as ``medkg eval ddx --policy graph``; JSON into bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.ddx.policies import GraphPolicy, InquiryConfig  # noqa: E402
from eval.ddx.report import confusions  # noqa: E402
from eval.ddx.runner import evaluate  # noqa: E402
from kg.ddxplus.definitions import load_definitions  # noqa: E402
from kg.ddxplus.mapping import DiseaseMapper  # noqa: E402
from kg.ddxplus.records import read_patients  # noqa: E402
from kg.merge import CURATED_VALUES, PACKS, TRAIN_STATS  # noqa: E402
from kg.models import DiseaseConcept  # noqa: E402
from kg.offline import offline_model  # noqa: E402

SHARED = Path(os.environ.get("MEDKG_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_FILES = (
    ROOT / "eval" / "ddx" / "data" / "simulated_patients.csv",
    SHARED / "kg" / "ddxplus" / "train" / "validate_fewshot_fr_588.csv",
    SHARED / "kg" / "ddxplus" / "train" / "validate_filtered_fr_6763.csv",
)
PACK_SETS = {
    "core sources only (no value knowledge)": ("core",),
    "core + curated values": ("core", CURATED_VALUES),
    "core + training statistics": ("core", TRAIN_STATS),
    "shipped graph (all packs)": PACKS,
}


def run_file(path: Path, packs: tuple[str, ...], limit: int | None, config: InquiryConfig) -> dict[str, Any]:
    model = offline_model(packs)
    definitions = load_definitions()
    mapper = DiseaseMapper(
        [DiseaseConcept(id=d.id, name=d.name, sources=list(d.sources)) for d in model.diseases], definitions
    )
    patients = read_patients(path, limit=limit)
    run = evaluate(
        patients,
        [GraphPolicy(model)],  # type: ignore[arg-type]  # the model answers the store's two calls
        mapper=mapper,
        definitions=definitions,
        finding_names={f.id: f.name for f in model.findings},
        config=config,
    )
    return {
        "file": path.name,
        "patients": len(patients),
        "summary": asdict(run.summaries["graph"]),
        "top_confusions": [
            {"truth": t, "predicted": p, "patients": n} for t, p, n in confusions(run, "graph")
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=Path, action="append")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ddx_knowledge.json")
    args = parser.parse_args()
    files = [f for f in (args.patients or DEFAULT_FILES) if f.exists()]
    config = InquiryConfig()
    results: dict[str, Any] = {"config": config.record(), "runs": []}
    for label, packs in PACK_SETS.items():
        for path in files:
            started = time.perf_counter()
            result = run_file(path, packs, args.limit, config)
            result.update(knowledge=label, packs=list(packs), seconds=round(time.perf_counter() - started, 1))
            results["runs"].append(result)
            s = result["summary"]
            print(
                f"{label:45s} {path.name:32s} n={result['patients']:5d} top1={s['top1']:.3f} "
                f"top3={s['top3']:.3f} top5={s['top5']:.3f} q={s['mean_questions']:.2f} "
                f"DDR={s['ddr']:.2f} DDP={s['ddp']:.2f} DDF1={s['ddf1']:.2f}",
                flush=True,
            )
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
