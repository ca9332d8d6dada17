"""One call from suites x modes to scores and report files (what `medkg eval qa` runs)."""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from assistant.app import Needs, open_app
from assistant.settings import Settings
from eval.qa.cache import ResultCache
from eval.qa.items import QAItem, Suite
from eval.qa.kg_context import KGContext
from eval.qa.loaders import default_benchmarks_dirs, load_suite
from eval.qa.metrics import Score
from eval.qa.modes import Mode
from eval.qa.runner import ModeRun, QARunner, RunOptions

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    scores: list[Score]
    runs: list[ModeRun]
    files: dict[str, Path]
    seconds: float


def load_items(
    suites: Sequence[Suite], data: Path | None, limit: int | None, settings: Settings
) -> dict[Suite, list[QAItem]]:
    if data is not None and data.is_file() and len(set(suites)) > 1:
        raise ValueError("--data names one file but several suites were asked for; give a folder")
    search = default_benchmarks_dirs(settings)
    return {suite: load_suite(suite, data, limit=limit, search=search) for suite in suites}


def qa_needs(modes: Sequence[Mode], *, handle_signals: bool = False) -> Needs:
    """The LLM always; the graph and the index only for the modes that read them."""
    return Needs(
        graph=any(m.needs_graph for m in modes),
        retriever="load" if any(m.needs_retriever for m in modes) else "none",
        images=False,
        consultation=False,
        handle_signals=handle_signals,
    )


def _log_progress(label: str, done: int, total: int) -> None:
    step = max(1, total // 10)
    if done == total or done % step == 0:
        log.info("%s: %d/%d", label, done, total)


def evaluate(
    settings: Settings,
    suites: Sequence[Suite],
    modes: Sequence[Mode],
    *,
    out_dir: Path,
    data: Path | None = None,
    limit: int | None = None,
    options: RunOptions | None = None,
    handle_signals: bool = False,
) -> Evaluation:
    options = options or RunOptions()
    started = time.perf_counter()
    # Read every file before starting any server, so a bad path fails in a second.
    items = load_items(suites, data, limit, settings)
    runs: list[ModeRun] = []
    needs = qa_needs(modes, handle_signals=handle_signals)
    with open_app(settings, needs) as app:
        if needs.retriever == "load" and app.retriever is None:
            raise RuntimeError(app.disabled.get("retriever", "the retrieval index could not be opened"))
        chat = app.require_chat_model()
        runner = QARunner(
            chat=chat,
            cache=ResultCache(out_dir / "cache.jsonl"),
            retriever=app.retriever,
            kg=KGContext(app.graph) if app.graph is not None else None,
            options=options,
            on_progress=_log_progress,
        )
        for suite, suite_items in items.items():
            for mode in modes:
                run = runner.run(suite_items, mode)
                log.info(
                    "%s/%s: accuracy %.1f%% ± %.1f (n=%d, unparseable %d, errors %d) in %.0f s",
                    suite, mode, 100 * run.score.accuracy, 100 * run.score.se, run.score.n,
                    run.score.unparseable, run.errors, run.seconds,
                )  # fmt: skip
                runs.append(run)
        model = chat.model
    scores = [r.score for r in runs]
    seconds = time.perf_counter() - started
    from eval.qa.report import write_report

    run_info = {
        "model": model,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "suites": [s.value for s in suites],
        "modes": [m.value for m in modes],
        "limit": limit,
        "concurrency": options.concurrency,
        "max_tokens": {m.value: options.max_tokens[m] for m in modes},
        "passages_k": options.passages_k,
        "temperature": 0.0,
        "cache_prompt": False,
        "seconds": round(seconds, 1),
        "requests_sent": sum(r.calls for r in runs),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
    }
    files = write_report(scores, out_dir, run_info=run_info)
    return Evaluation(scores=scores, runs=runs, files=files, seconds=seconds)
