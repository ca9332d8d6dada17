"""Write a DDX evaluation run as JSON (everything) and Markdown (the comparison table)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval.ddx.runner import DdxRun

POLICY_LABELS = {
    "full": "full agent (LLM + graph)",
    "graph": "graph policy, no LLM",
    "baseline": "plain naive Bayes + info gain",
    "random": "random questions",
    "none": "no questions",
}


def to_json(run: DdxRun) -> dict[str, Any]:
    return {
        "started": run.started,
        "wall_seconds": round(run.wall_seconds, 2),
        "config": run.config,
        "summaries": {name: asdict(summary) for name, summary in run.summaries.items()},
        "skipped": run.skipped,
        "unmapped_conditions": run.unmapped_conditions,
        "episodes": run.episodes,
    }


def comparison_table(run: DdxRun) -> str:
    lines = [
        "| policy | n | GTPA@1 (±SE) | GTPA@3 | GTPA@5 | questions mean / median | DDR | DDP | DDF1 "
        "| s / patient (mean, p95) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in run.summaries.items():
        lines.append(
            f"| {POLICY_LABELS.get(name, name)} | {s.n} | {s.top1:.3f} ± {s.top1_se:.3f} | {s.top3:.3f} "
            f"| {s.top5:.3f} | {s.mean_questions:.2f} / {s.median_questions:g} | {s.ddr:.3f} | {s.ddp:.3f} "
            f"| {s.ddf1:.3f} | {s.mean_seconds:.3f}, {s.p95_seconds:.3f} | {s.errors} |"
        )
    return "\n".join(lines)


def per_condition_table(run: DdxRun) -> str:
    names = list(run.summaries)
    conditions = sorted({c for s in run.summaries.values() for c in s.per_condition})
    lines = [
        "| condition | n | " + " | ".join(f"{n} top-1" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for condition in conditions:
        cells = []
        count = 0
        for name in names:
            score = run.summaries[name].per_condition.get(condition)
            count = max(count, score.n if score else 0)
            cells.append(f"{score.top1:.2f}" if score else "-")
        lines.append(f"| {condition} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def confusions(run: DdxRun, policy: str, top: int = 12) -> list[tuple[str, str, int]]:
    """The most frequent (true condition, wrongly ranked first) pairs of one policy."""
    pairs = Counter(
        (e["condition"], e["top"][0]["name"])
        for e in run.episodes
        if e["policy"] == policy and e["top"] and not e["correct_top1"]
    )
    return [(truth, predicted, n) for (truth, predicted), n in pairs.most_common(top)]


def confusion_table(run: DdxRun) -> str:
    lines = ["| policy | true condition | ranked first instead | patients |", "|---|---|---|---|"]
    for name in run.summaries:
        for truth, predicted, n in confusions(run, name):
            lines.append(f"| {POLICY_LABELS.get(name, name)} | {truth} | {predicted} | {n} |")
    return "\n".join(lines)


def to_markdown(run: DdxRun) -> str:
    cfg = run.config
    parts = [
        "# Interactive diagnosis evaluation (DDXPlus protocol)",
        "",
        f"Run {run.started}, {cfg.get('patients')} patients from `{cfg.get('patients_file', '?')}`, "
        f"at most {cfg.get('max_questions')} questions per patient, "
        f"stop at top posterior >= {cfg.get('posterior_threshold')}, "
        f"differential cut-off p >= {cfg.get('cutoff')}, seed {cfg.get('seed')}; "
        f"wall time {run.wall_seconds:.1f}s.",
        "",
        comparison_table(run),
        "",
        "GTPA@k: ground-truth pathology in the top k of the final differential. DDR/DDP/DDF1: the final "
        "differential's diseases (p >= cut-off) against the patient's DIFFERENTIAL_DIAGNOSIS, per patient, "
        "averaged. ±SE: binomial standard error; bootstrap 95% intervals are in the JSON.",
    ]
    if run.unmapped_conditions:
        parts += [
            "",
            "DDXPlus conditions missing from the graph (always misses): "
            + ", ".join(run.unmapped_conditions),
        ]
    if run.skipped:
        parts += ["", f"Skipped patients: {len(run.skipped)} (unknown pathology names; see the JSON)."]
    parts += ["", "## Top-1 accuracy per condition", "", per_condition_table(run), ""]
    parts += ["## Most frequent confusions", "", confusion_table(run), ""]
    return "\n".join(parts)


def write_report(run: DdxRun, out_dir: Path | str) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "ddx_results.json"
    md_path = out / "ddx_results.md"
    json_path.write_text(json.dumps(to_json(run), indent=1, ensure_ascii=False) + "\n")
    md_path.write_text(to_markdown(run))
    return json_path, md_path
