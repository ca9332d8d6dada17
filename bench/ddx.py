"""Interactive-diagnosis benchmark: every policy on the same shipped simulated patients.

The graph-only policies (plain baseline, graph policy, random questions, no questions) run on
the first ``--patients`` rows of eval/ddx/data/simulated_patients.csv (round-robin order, so
98 rows = 2 patients of each of the 49 DDXPlus conditions); the full agent (LLM + graph) runs on
the first ``--agent-patients`` rows (it needs the embedded LLM, seconds per turn on this CPU).
Accuracy ratios and time ratios are against the plain baseline measured in the same run, on
the same patients.

    .venv/bin/python bench/ddx.py [--patients 98] [--agent-patients 20] [--max-questions N]

Uses the servers configured in the settings or starts the embedded ones (data dir from
MEDKG_DATA_DIR, graph loaded if empty). Writes bench/results/ddx.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "ddx.json"

from assistant.app import open_app  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from eval.ddx.evaluate import evaluate_with_store, evaluation_needs  # noqa: E402
from eval.ddx.generator import (  # noqa: E402
    DEFAULT_PROFILE,
    SHIPPED_PATIENTS,
    VALUED_PROFILE,
    GeneratorProfile,
    generate_patients,
)
from eval.ddx.metrics import PolicySummary  # noqa: E402
from eval.ddx.report import comparison_table  # noqa: E402
from eval.ddx.runner import DdxRun  # noqa: E402
from kg import Neo4jGraphStore, load_graph  # noqa: E402
from kg.calibration import calibrate_graph  # noqa: E402
from kg.ddxplus.counting import count_conditions  # noqa: E402
from kg.ddxplus.definitions import load_definitions  # noqa: E402
from kg.ddxplus.mapping import DiseaseMapper  # noqa: E402
from kg.ddxplus.records import write_patients  # noqa: E402

CALIBRATION_SEED = 123
VALUED_TEST_SEED = 7


def _row(summary: PolicySummary, baseline: PolicySummary | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "n": summary.n,
        "errors": summary.errors,
        "gtpa@1": round(summary.top1, 4),
        "gtpa@1_se": round(summary.top1_se, 4),
        "gtpa@1_ci95": [round(x, 4) for x in summary.top1_ci95],
        "gtpa@3": round(summary.top3, 4),
        "gtpa@5": round(summary.top5, 4),
        "questions_mean": round(summary.mean_questions, 3),
        "questions_median": summary.median_questions,
        "ddr": round(summary.ddr, 4),
        "ddp": round(summary.ddp, 4),
        "ddf1": round(summary.ddf1, 4),
        "seconds_per_patient_mean": round(summary.mean_seconds, 4),
        "seconds_per_patient_p95": round(summary.p95_seconds, 4),
    }
    if baseline is not None and baseline.n == summary.n:
        row["gtpa@1_minus_baseline"] = round(summary.top1 - baseline.top1, 4)
        questions = summary.mean_questions / max(baseline.mean_questions, 1e-9)
        row["questions_ratio_to_baseline"] = round(questions, 3)
        row["time_ratio_to_baseline"] = round(summary.mean_seconds / max(baseline.mean_seconds, 1e-9), 2)
    return row


def _block(run: DdxRun) -> dict[str, Any]:
    baseline = run.summaries.get("baseline")
    return {
        "patients": run.config["patients"],
        "wall_seconds": round(run.wall_seconds, 1),
        "policies": {name: _row(s, baseline) for name, s in run.summaries.items()},
        "table_markdown": comparison_table(run),
    }


def _calibrated_run(
    store: Neo4jGraphStore,
    settings: Any,
    args: argparse.Namespace,
    common: Any,
    patients_file: Path,
    profile: GeneratorProfile,
) -> Any:
    """Graph policies after calibrating on generated training patients of ``profile`` (seed
    123, never the evaluated ones); the shipped graph is restored afterwards, whatever happens."""
    definitions = load_definitions()
    train = generate_patients(
        definitions, args.calibrate_per_condition, seed=CALIBRATION_SEED, profile=profile
    )
    counted = count_conditions(train, DiseaseMapper(store.diseases(), definitions), definitions)
    try:
        label = f"generated seed {CALIBRATION_SEED}: {counted.patients} patients"
        report = calibrate_graph(store, counted.counts, label=label)
        time.sleep(1.1)  # the store checks the graph version at most once a second
        run = evaluate_with_store(
            store, settings, patients_file, policies=["baseline", "graph"], limit=args.patients, **common
        )
    finally:
        load_graph(store, force=True)
        time.sleep(1.1)
    return {"report": report.model_dump(), **_block(run)}


def _valued_runs(store: Neo4jGraphStore, settings: Any, args: argparse.Namespace, common: Any) -> Any:
    """Patients whose values (pain location...) depend on their condition, as in DDXPlus's own
    knowledge base: the shipped graph cannot use the values, a calibrated one can."""
    definitions = load_definitions()
    with tempfile.TemporaryDirectory() as tmp:
        patients_file = Path(tmp) / "valued.csv"
        write_patients(
            patients_file, generate_patients(definitions, 10, seed=VALUED_TEST_SEED, profile=VALUED_PROFILE)
        )
        shipped = evaluate_with_store(
            store, settings, patients_file, policies=["baseline", "graph"], limit=args.patients, **common
        )
        calibrated = _calibrated_run(store, settings, args, common, patients_file, VALUED_PROFILE)
    return {
        "profile": "valued",
        "seed": VALUED_TEST_SEED,
        "shipped": _block(shipped),
        "calibrated": calibrated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=98)
    parser.add_argument("--agent-patients", type=int, default=20)
    parser.add_argument(
        "--max-questions", type=int, default=None, help="question cap per patient (default: settings)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--calibrate-per-condition",
        type=int,
        default=100,
        help="also run the graph policies after `kg calibrate` on this many generated training "
        "patients per condition (seed 123, never the evaluated ones); 0 skips it",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    settings = load_settings()
    need_llm = args.agent_patients > 0
    started = time.perf_counter()
    policies = ["full"] if need_llm else []
    with open_app(settings, evaluation_needs(policies, handle_signals=True)) as app:
        store, live = app.require_graph(), app.settings
        stats = store.stats()
        stop = live.agent.stop
        if args.max_questions is not None:
            stop = stop.updated(max_questions=args.max_questions)
        common = {"stop": stop, "seed": args.seed}
        graph_run = evaluate_with_store(
            store,
            live,
            SHIPPED_PATIENTS,
            policies=["baseline", "graph", "random", "none"],
            limit=args.patients,
            **common,  # type: ignore[arg-type]
        )
        agent_run = None
        if need_llm:
            agent_run = evaluate_with_store(
                store,
                live,
                SHIPPED_PATIENTS,
                policies=["full", "baseline", "graph"],
                limit=args.agent_patients,
                agent=app.context,
                **common,  # type: ignore[arg-type]
            )
        calibrated = valued = None
        if args.calibrate_per_condition > 0:
            calibrated = _calibrated_run(store, live, args, common, SHIPPED_PATIENTS, DEFAULT_PROFILE)
            valued = _valued_runs(store, live, args, common)
    result = {
        "benchmark": "ddx",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "patients_file": str(SHIPPED_PATIENTS.relative_to(ROOT)),
        "graph": {"labels": stats.labels, "relations": stats.relations, "version": stats.version},
        "max_questions": graph_run.config["max_questions"],
        "posterior_threshold": graph_run.config["posterior_threshold"],
        "differential_cutoff": graph_run.config["cutoff"],
        "graph_policies": _block(graph_run),
        "full_agent": _block(agent_run) if agent_run else None,
        "calibrated": calibrated,
        "valued_patients": valued,
        "per_patient_seconds": {
            name: [e["seconds"] for e in run.episodes if e["policy"] == name]
            for run in (graph_run, agent_run)
            if run
            for name in run.summaries
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(result["graph_policies"]["table_markdown"])
    if agent_run:
        print()
        print(result["full_agent"]["table_markdown"])
    if calibrated:
        print(f"\nafter calibration on {calibrated['report']['patients']} generated patients:")
        print(calibrated["table_markdown"])
    if valued:
        print("\npatients with condition-specific values, shipped graph:")
        print(valued["shipped"]["table_markdown"])
        print("same patients, graph calibrated on generated patients of the same kind:")
        print(valued["calibrated"]["table_markdown"])
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
