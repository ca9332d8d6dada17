"""Results as JSON, a Markdown table and a PNG bar chart comparing modes per suite."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.qa.metrics import Score


def markdown_table(scores: Sequence[Score]) -> str:
    lines = [
        "| suite | mode | n | accuracy ± SE | chance | unparseable | errors | mean latency (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        lines.append(
            f"| {s.suite} | {s.mode} | {s.n} | {100 * s.accuracy:.1f}% ± {100 * s.se:.1f} "
            f"| {100 * s.chance:.1f}% | {s.unparseable} | {s.errors} | {s.mean_latency_s:.2f} |"
        )
    return "\n".join(lines) + "\n"


def plot(scores: Sequence[Score], path: Path, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(dict.fromkeys(s.suite for s in scores))
    modes = list(dict.fromkeys(s.mode for s in scores))
    by_key = {(s.suite, s.mode): s for s in scores}
    width = 0.8 / max(1, len(modes))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.8 * len(suites) + 2), 4))
    for m, mode in enumerate(modes):
        xs, ys, errs = [], [], []
        for x, suite in enumerate(suites):
            s = by_key.get((suite, mode))
            if s is None:
                continue
            xs.append(x - 0.4 + width * (m + 0.5))
            ys.append(100 * s.accuracy)
            errs.append(100 * s.se)
        ax.bar(xs, ys, width, yerr=errs, capsize=3, label=mode)
    for x, suite in enumerate(suites):
        chance = next(s.chance for s in scores if s.suite == suite)
        ax.hlines(100 * chance, x - 0.45, x + 0.45, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(range(len(suites)), [f"{s}\n(n={by_key_n(scores, s)})" for s in suites])
    ax.set_ylabel("accuracy (%) ± SE; dashed = chance")
    ax.set_ylim(0, 100)
    ax.legend(title="mode", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def by_key_n(scores: Sequence[Score], suite: str) -> int:
    return max((s.n for s in scores if s.suite == suite), default=0)


def write_report(
    scores: Sequence[Score], out_dir: Path, *, run_info: Mapping[str, Any], stem: str = "results"
) -> dict[str, Path]:
    """Write <stem>.json, <stem>.md and <stem>.png into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / f"{stem}.png"}
    payload = {"run": dict(run_info), "scores": [s.model_dump() for s in scores]}
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    model = run_info.get("model", "")
    header = f"# QA evaluation: {model}\n\n" if model else ""
    paths["md"].write_text(header + markdown_table(scores), encoding="utf-8")
    plot(scores, paths["png"], title=str(model))
    return paths
