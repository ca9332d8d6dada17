"""Knowledge-graph benchmark: full load, and differential + next-question latency, three ways.

One run, one fresh embedded ArcadeDB (Bolt) server:
- load: full merged graph into an empty database, then the idempotent reload (force);
- latency p50/p95 for evidence sets of 3, 10 and 20 findings (drawn from DDXPlus condition
  lists, seeded; about 1/3 of them absent) for:
  * ``cached_matrix`` (default): the disease x finding matrix pulled once per graph version,
    ranking and information gain in numpy (``Neo4jGraphStore.differential`` + ``next_step``);
  * ``candidate_subgraph``: per request, pull the candidate diseases' edges from the graph
    and score them in numpy;
  * ``cypher_ranking``: per request, the ranking computed inside Cypher (``RANK_IN_CYPHER``);
  the two alternatives rank only (no question), so their numbers are a lower bound;
- agreement: the top-10 posterior values of each alternative against the default.

    .venv/bin/python bench/kg.py [--reps 30] [--out bench/results/kg.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.processes.embedded import embedded_graph_service, graph_uri  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from kg import Neo4jGraphStore, connect, load_graph, queries  # noqa: E402
from kg.models import (  # noqa: E402
    DEFAULT_MAX_QUESTIONS,
    DEFAULT_POSTERIOR_THRESHOLD,
    Evidence,
    Observation,
    StopRule,
)
from kg.scoring import LEAK_HISTORY, LEAK_SYMPTOM  # noqa: E402
from kg.sources import ddxplus_conditions, ddxplus_evidences  # noqa: E402

SIZES = (3, 10, 20)


def evidence_sets(size: int, count: int, seed: int) -> list[Evidence]:
    rng = random.Random(seed + size)
    evidences = ddxplus_evidences()
    conditions = list(ddxplus_conditions().values())
    binary = sorted(e for e, ev in evidences.items() if ev.data_type == "B")
    sets = []
    for _ in range(count):
        cond = rng.choice(conditions)
        own = [e for e in cond.symptoms + cond.antecedents if evidences[e].data_type == "B"]
        present = rng.sample(own, min(len(own), max(1, (2 * size) // 3)))
        others = [e for e in binary if e not in present]
        absent = rng.sample(others, size - len(present))
        obs = [Observation(finding_id=f, present=True) for f in present]
        obs += [Observation(finding_id=f, present=False, source="answer") for f in absent]
        sets.append(Evidence(observations=obs, age=rng.randint(5, 85), sex=rng.choice(("M", "F"))))
    return sets


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def timed(
    fn: Callable[[Evidence], list[str]], sets: list[Evidence]
) -> tuple[dict[str, float], list[list[str]]]:
    fn(sets[0])  # warm-up
    samples, tops = [], []
    for evidence in sets:
        started = time.perf_counter()
        tops.append(fn(evidence))
        samples.append(time.perf_counter() - started)
    return percentiles(samples), tops


def split(evidence: Evidence) -> tuple[list[str], list[str]]:
    present = [o.finding_id for o in evidence.observations if o.present]
    absent = [o.finding_id for o in evidence.observations if o.present is False]
    return present, absent


def make_methods(store: Neo4jGraphStore) -> dict[str, Callable[[Evidence], list[float]]]:
    model = store.model()  # the prior (age, sex, catalogue) is evidence-independent: shared

    def prior(evidence: Evidence) -> dict[str, float]:
        values = model.log_prior(evidence.age, evidence.sex)
        return {d.id: float(values[i]) for i, d in enumerate(model.diseases)}

    def cached(evidence: Evidence) -> list[float]:
        diff = store.differential(evidence, top_k=10)
        store.next_step(evidence, diff)
        return [d.probability for d in diff.diseases[:10]]  # past 10: severe ones kept, flagged

    def subgraph(evidence: Evidence) -> list[float]:
        present, _ = split(evidence)
        edges = store.run(queries.CANDIDATE_EDGES, {"present": present})
        sub = model.subset((e["d"], e["f"], float(e["p"]), str(e["source"])) for e in edges)
        diff = sub.differential(evidence, top_k=10)
        return [d.probability for d in diff.diseases[:10]]

    def cypher(evidence: Evidence) -> list[float]:
        present, absent = split(evidence)
        rows = store.run(
            queries.RANK_IN_CYPHER,
            {
                "present": present,
                "absent": absent,
                "leak_symptom": LEAK_SYMPTOM,
                "leak_history": LEAK_HISTORY,
            },
        )
        base = prior(evidence)
        scores = np.array([base[r["id"]] + float(r["llr"]) / model.temperature for r in rows])
        probs = np.exp(scores - scores.max())
        return sorted((probs / probs.sum()).tolist(), reverse=True)[:10]

    return {"cached_matrix": cached, "candidate_subgraph": subgraph, "cypher_ranking": cypher}


def offline_interactive(csv_path: Path, max_questions: int, threshold: float) -> dict[str, float]:
    """Question loop on simulated DDXPlus-style patients with the scoring model alone (no server).

    Starts from the patient's INITIAL_EVIDENCE; the eval's simulator answers (yes with values
    for findings in the patient's list, no for other DDXPlus evidences, don't know for
    SymCat-only findings). Whole merged matrix (801 SymCat + 49 DDXPlus).
    """
    from eval.ddx.simulator import SimulatedPatient
    from kg.ddxplus.definitions import load_definitions
    from kg.ddxplus.records import read_patients
    from kg.merge import _slug
    from kg.offline import offline_model

    model = offline_model()
    definitions = load_definitions()
    patients = read_patients(csv_path)
    rule = StopRule(max_questions=max_questions, posterior_threshold=threshold)
    top1 = top3 = asked_total = 0
    for patient in patients:
        simulated = SimulatedPatient(patient, definitions)

        observations = simulated.answer(simulated.initial_finding_id).observations("initial")
        for _ in range(max_questions):
            evidence = Evidence(observations=observations, age=patient.age, sex=patient.sex)
            step = model.next_step(evidence, model.differential(evidence), rule)
            if step.question is None:
                break
            observations = observations + simulated.answer(step.question.finding.id).observations()
            asked_total += 1
        final = model.differential(
            Evidence(observations=observations, age=patient.age, sex=patient.sex), top_k=3
        )
        ids = [d.disease_id for d in final.diseases]
        truth = f"DDX:{_slug(patient.pathology)}"
        top1 += bool(ids) and ids[0] == truth
        top3 += truth in ids
    n = max(len(patients), 1)
    return {
        "patients": len(patients),
        "max_questions": max_questions,
        "posterior_threshold": threshold,
        "top1": round(top1 / n, 3),
        "top3": round(top3 / n, 3),
        "mean_questions": round(asked_total / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30, help="evidence sets per size (alternatives)")
    parser.add_argument("--default-reps", type=int, default=200, help="evidence sets per size (default)")
    parser.add_argument(
        "--patients",
        type=Path,
        default=REPO / "eval" / "ddx" / "data" / "simulated_patients.csv",
        help="simulated DDXPlus-style patients for the offline question-loop check (skipped if missing)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "kg.json")
    args = parser.parse_args()
    result: dict[str, object] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "reps": {"alternatives": args.reps, "default": args.default_reps},
    }
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        with embedded_graph_service(settings) as service:
            store = connect(
                graph_uri(service), settings.graph.user, settings.graph.password.get_secret_value(), "graph"
            )
            started = time.perf_counter()
            report = load_graph(store)
            fresh = time.perf_counter() - started
            started = time.perf_counter()
            load_graph(store, force=True)
            reload_s = time.perf_counter() - started
            started = time.perf_counter()
            store.model()
            matrix_s = time.perf_counter() - started
            result["load"] = {
                "fresh_s": round(fresh, 2),
                "reload_s": round(reload_s, 2),
                "matrix_build_s": round(matrix_s, 2),
                "labels": report.labels,
                "relations": report.relations,
                "version": report.version,
            }
            methods = make_methods(store)
            latency: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
            agreement: dict[str, dict[str, float]] = {name: {} for name in methods if name != "cached_matrix"}
            for size in SIZES:
                sets = evidence_sets(size, max(args.reps, args.default_reps), args.seed)
                tops: dict[str, list[list[float]]] = {}
                for name, fn in methods.items():
                    reps = args.default_reps if name == "cached_matrix" else args.reps
                    latency[name][str(size)], tops[name] = timed(fn, sets[:reps])
                for name in agreement:
                    # Same top-10 posterior values (ids may swap inside exact ties).
                    same = [
                        len(a) == len(b) and np.allclose(a, b, atol=1e-9)
                        for a, b in zip(tops[name], tops["cached_matrix"], strict=False)
                    ]
                    agreement[name][str(size)] = float(np.mean(same))
            store.close()
    result["latency"] = latency
    result["top10_agreement_with_default"] = agreement
    p95 = {name: max(v["p95_ms"] for v in sizes.values()) for name, sizes in latency.items()}
    result["default"] = "cached_matrix"
    result["ratios_p95_vs_default"] = {
        name: round(value / p95["cached_matrix"], 2) for name, value in p95.items() if name != "cached_matrix"
    }
    result["targets"] = {
        "full_load_under_60s": result["load"]["fresh_s"] < 60,  # type: ignore[index]
        "differential_plus_next_p95_under_50ms": p95["cached_matrix"] < 50,
    }
    if args.patients.is_file():
        result["offline_interactive"] = [
            # the session-1 rule (hard budget 8, stop at 0.8), then the default stop rule
            offline_interactive(args.patients, max_questions=q, threshold=t)
            for q, t in ((8, 0.8), (DEFAULT_MAX_QUESTIONS, DEFAULT_POSTERIOR_THRESHOLD))
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
