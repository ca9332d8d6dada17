"""Agent turn latency on the embedded stack: LLM time vs everything else.

Runs scripted consultations (DDXPlus-style patients answering from their condition's evidence
list) twice in the same run: with every LLM step on (question phrasing, candidate
confirmation, summary) and with the LLM off (baseline). Each turn's wall time is split into
the time spent inside ChatModel calls and the rest (extraction, graph queries, checkpointing,
retrieval, rendering). Target: the rest under 100 ms at p95.

    .venv/bin/python bench/agent.py [--data-dir DIR] [--llm-cases N] [--out bench/results/agent.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.agent.state import AgentOptions  # noqa: E402
from assistant.consultation import Consultation  # noqa: E402
from assistant.llm.base import ChatModel  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from eval.ddx.simulator import typical_answer  # noqa: E402
from kg.ddxplus.definitions import load_definitions  # noqa: E402

CASES = [
    ("Influenza", "I've had a fever, muscle aches all over and a cough since yesterday"),
    ("Pneumonia", "I have a cough with green sputum and a fever"),
    ("Panic attack", "I suddenly felt my heart racing, I was sweating and afraid I was going to die"),
    (
        "Pulmonary embolism",
        "I have sharp chest pain when I breathe in and I'm short of breath, my calf is swollen",
    ),
    ("Anaphylaxis", "My tongue is swelling and I have hives after eating peanuts"),
    ("Acute otitis media", "My ear hurts and I have a fever"),
    ("Bronchospasm / acute asthma exacerbation", "I'm wheezing and short of breath, I have asthma"),
    ("URTI", "I have a runny nose, a sore throat and I'm coughing a bit"),
]


class TimedChatModel:
    """Wraps a ChatModel and adds the seconds spent in it to a per-thread counter."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.model = inner.model
        self._local = threading.local()

    @property
    def seconds(self) -> float:
        return float(getattr(self._local, "seconds", 0.0))

    @property
    def calls(self) -> int:
        return int(getattr(self._local, "calls", 0))

    def reset(self) -> None:
        self._local.seconds = 0.0
        self._local.calls = 0

    def _timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._local.seconds = self.seconds + time.perf_counter() - started
            self._local.calls = self.calls + 1

    def chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
        return self._timed(self.inner.chat, messages, **kwargs)

    def structured(self, messages: Sequence[Any], schema: Any, **kwargs: Any) -> Any:
        return self._timed(self.inner.structured, messages, schema, **kwargs)

    def stream(self, messages: Sequence[Any], **kwargs: Any) -> Iterator[str]:
        started = time.perf_counter()
        try:
            yield from self.inner.stream(messages, **kwargs)
        finally:
            self._local.seconds = self.seconds + time.perf_counter() - started


def run_config(
    name: str, consultation: Consultation, timed: TimedChatModel, cases: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    definitions = load_definitions()
    turns: list[dict[str, Any]] = []
    outcomes = []
    for condition_name, opening in cases:
        timed.reset()
        started = time.perf_counter()
        result = consultation.start(opening)
        turns.append(_turn(condition_name, "start", started, timed))
        while result.follow_up is not None:
            reply = typical_answer(result.follow_up.finding_id, condition_name, definitions)
            timed.reset()
            started = time.perf_counter()
            result = consultation.answer(result.session_id, reply)
            turns.append(_turn(condition_name, "answer", started, timed))
        top = [d.name for d in result.differential[:3]]
        outcomes.append(
            {
                "condition": condition_name,
                "top3": top,
                "hit_top1": bool(top) and top[0] == condition_name,
                "hit_top3": condition_name in top,
                "questions": result.questions_asked,
                "urgent": result.urgent,
            }
        )
        print(f"[{name}] {condition_name}: top3={top} questions={result.questions_asked}", flush=True)
    return {"turns": turns, "outcomes": outcomes, "summary": summarize(turns, outcomes)}


def _turn(case: str, kind: str, started: float, timed: TimedChatModel) -> dict[str, Any]:
    total = time.perf_counter() - started
    return {
        "case": case,
        "kind": kind,
        "total_ms": round(total * 1000, 2),
        "llm_ms": round(timed.seconds * 1000, 2),
        "rest_ms": round((total - timed.seconds) * 1000, 2),
        "llm_calls": timed.calls,
    }


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[k], 2)


def stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 2) if values else 0.0,
        "p50": pct(values, 0.5),
        "p95": pct(values, 0.95),
        "max": round(max(values), 2) if values else 0.0,
    }


def summarize(turns: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rest_ms": stats([t["rest_ms"] for t in turns]),
        "llm_ms": stats([t["llm_ms"] for t in turns]),
        "total_ms": stats([t["total_ms"] for t in turns]),
        "rest_ms_start_turns": stats([t["rest_ms"] for t in turns if t["kind"] == "start"]),
        "rest_ms_answer_turns": stats([t["rest_ms"] for t in turns if t["kind"] == "answer"]),
        "llm_calls": sum(t["llm_calls"] for t in turns),
        "top1": round(sum(o["hit_top1"] for o in outcomes) / max(1, len(outcomes)), 3),
        "top3": round(sum(o["hit_top3"] for o in outcomes) / max(1, len(outcomes)), 3),
        "mean_questions": round(statistics.fmean(o["questions"] for o in outcomes), 2) if outcomes else 0.0,
    }
    return out


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="data dir (graph, index, caches)")
    parser.add_argument("--llm-cases", type=int, default=3, help="cases run with the LLM on")
    parser.add_argument("--llm-max-questions", type=int, default=4)
    parser.add_argument("--index-limit", type=int, default=300, help="MedQuAD pairs in the bench index")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "agent.json")
    args = parser.parse_args()

    from assistant.app import Needs, open_app
    from assistant.settings import RetrievalSettings

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="medkg-bench-agent-"))
    settings = Settings(data_dir=data_dir, retrieval=RetrievalSettings(corpus_limit=args.index_limit))
    setup: dict[str, float] = {}
    t0 = time.perf_counter()
    with open_app(settings, Needs(images=False, consultation=False)) as app:
        # Servers, graph load, bench index and warm caches, in the app's own order.
        setup["open_app_s"] = round(time.perf_counter() - t0, 1)
        live, runtime = app.settings, app.require_context()
        timed = TimedChatModel(runtime.chat_model)
        runtime.chat_model = timed

        off = AgentOptions.from_settings(live, llm_phrasing=False, llm_extraction=False, llm_summary=False)
        short = live.agent.stop.updated(max_questions=args.llm_max_questions)
        on = AgentOptions.from_settings(live, stop=short)
        off_short = AgentOptions.from_settings(
            live, llm_phrasing=False, llm_extraction=False, llm_summary=False, stop=short
        )
        results: dict[str, Any] = {}
        with Consultation(runtime, live, options=off) as c:
            results["llm_off"] = run_config("llm_off", c, timed, CASES)
        # Same cases and question budget with and without the LLM, for the ratio.
        llm_cases = CASES[: args.llm_cases]
        with Consultation(runtime, live, options=off_short) as c:
            results["llm_off_same_cases"] = run_config("llm_off_same_cases", c, timed, llm_cases)
        with Consultation(runtime, live, options=on) as c:
            results["llm_on"] = run_config("llm_on", c, timed, llm_cases)

    on_s, base_s = results["llm_on"]["summary"], results["llm_off_same_cases"]["summary"]
    report = {
        "benchmark": "agent turn latency (LLM vs rest)",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "shared 2-core container; other engineers' jobs ran at the same time",
        },
        "git_commit": git_commit(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "setup": setup,
        "target": {"rest_ms_p95_below": 100},
        "rest_p95_ms": {k: v["summary"]["rest_ms"]["p95"] for k, v in results.items()},
        "ratios": {
            "total_p50_llm_on_vs_off": round(
                on_s["total_ms"]["p50"] / max(base_s["total_ms"]["p50"], 1e-6), 2
            ),
            "rest_p95_llm_on_vs_off": round(on_s["rest_ms"]["p95"] / max(base_s["rest_ms"]["p95"], 1e-6), 2),
        },
        "configs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("setup", "rest_p95_ms", "ratios")}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
