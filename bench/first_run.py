"""First run of the served app: seconds to serving, to a complete retrieval index, turn latency.

Starts the app twice through its real start-up path (``assistant.app.open_app`` with the
``SERVE`` needs, as ``medkg serve`` does) on one data dir: **cold** (empty data dir: graph
load, index built in the background from the shipped vectors) and **warm** (everything on
disk). Each time it records seconds to serving and to index complete (the index progress
snapshots), runs consultation turns while the index is being built and after, and records
where a turn's time goes (LLM calls, prompt sizes). It also measures recall@10 of the index
built from the int8 artifact against float32 vectors (before/after), on held-aside MedQuAD
questions.

    .venv/bin/python bench/first_run.py [--data-dir DIR] [--float-cache /tmp/artbuild/cache]

Writes bench/results/first_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# `python bench/first_run.py` puts bench/ first on sys.path, where bench/kg.py would shadow kg.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "first_run.json"
# A scripted consultation: an opening, then answers to the follow-up questions.
OPENINGS = [
    "I have had a fever and a cough for three days",
    "I have a headache and my neck is stiff",
    "My throat is sore and I feel tired",
    "I have stomach pain and diarrhea since yesterday",
]
ANSWERS = ["Yes", "No", "Don't know"]


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


class CallLog:
    """Wraps the chat model's methods on the instance: every LLM call of a turn, timed."""

    def __init__(self, model: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        for name in ("chat", "structured"):
            setattr(model, name, self._wrap(name, getattr(model, name)))

    def _wrap(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(messages: Any, *args: Any, **kwargs: Any) -> Any:
            chars = sum(len(getattr(m, "content", "") or "") for m in messages)
            started = time.perf_counter()
            result = fn(messages, *args, **kwargs)
            usage = getattr(result, "usage", None)
            entry = {
                "kind": kind,
                "seconds": round(time.perf_counter() - started, 3),
                "prompt_chars": chars,
                "prompt_tokens": getattr(usage, "prompt_tokens", None),
                "completion_tokens": getattr(usage, "completion_tokens", None),
                "max_tokens": kwargs.get("max_tokens"),
            }
            with self._lock:
                self.calls.append(entry)
            return result

        return timed

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            out, self.calls = self.calls, []
        return out


def consultation_turns(consultation: Any, calls: CallLog, index: int, max_turns: int) -> list[dict[str, Any]]:
    """One scripted consultation; per turn: seconds, LLM calls and their share."""
    turns = []
    calls.take()
    started = time.perf_counter()
    result = consultation.start(OPENINGS[index % len(OPENINGS)])
    turns.append(_turn("start", started, calls.take(), result))
    n = 1
    while result.follow_up is not None and n < max_turns:
        started = time.perf_counter()
        result = consultation.answer(result.session_id, ANSWERS[n % len(ANSWERS)])
        turns.append(_turn("answer", started, calls.take(), result))
        n += 1
    return turns


def _turn(kind: str, started: float, llm: list[dict[str, Any]], result: Any) -> dict[str, Any]:
    total = time.perf_counter() - started
    llm_s = sum(c["seconds"] for c in llm)
    return {
        "kind": kind,
        "seconds": round(total, 3),
        "llm_seconds": round(llm_s, 3),
        "rest_seconds": round(total - llm_s, 3),
        "llm_calls": llm,
        "passages": len(getattr(result, "passages", []) or []),
    }


def summarize_turns(turns: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [t["seconds"] for t in turns]
    calls = [c for t in turns for c in t["llm_calls"]]
    return {
        "n": len(turns),
        "first_turn_s": seconds[0] if seconds else None,
        "p50_s": pct(seconds, 0.5),
        "p95_s": pct(seconds, 0.95),
        "max_s": max(seconds) if seconds else None,
        "llm_calls_per_turn": round(len(calls) / max(len(turns), 1), 2),
        "llm_share": round(sum(t["llm_seconds"] for t in turns) / max(sum(seconds), 1e-9), 3),
        "prompt_tokens_p50": pct([c["prompt_tokens"] for c in calls if c["prompt_tokens"]], 0.5),
        "prompt_chars_p50": pct([c["prompt_chars"] for c in calls], 0.5),
        "prompt_chars_max": max((c["prompt_chars"] for c in calls), default=None),
        "with_passages": sum(1 for t in turns if t["passages"]),
    }


def start_once(label: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One start of the app (cold or warm), turns during and after the index build."""
    from assistant.app import SERVE, open_app
    from assistant.indexing import add_progress_listener
    from assistant.settings import RetrievalSettings, Settings

    snaps: list[tuple[float, Any]] = []
    t0 = time.perf_counter()
    remove = add_progress_listener(lambda s: snaps.append((time.perf_counter() - t0, s)))
    settings = Settings(
        data_dir=data_dir,
        retrieval=RetrievalSettings(corpus_limit=args.corpus_limit, prebuilt_vectors=not args.no_artifact),
    )
    out: dict[str, Any] = {"label": label, "load_at_start": load()}
    try:
        with open_app(settings, SERVE, echo=lambda line: print(f"[{label}] {line}", flush=True)) as app:
            serving = time.perf_counter() - t0
            out["seconds_to_serving"] = round(serving, 2)
            calls = CallLog(app.require_chat_model())
            consultation = app.consultation
            during: list[dict[str, Any]] = []
            i = 0
            # Turns while the background build runs (a warm start has none to wait for).
            while not app.wait_for_index(0) and i < args.max_consultations:
                during += consultation_turns(consultation, calls, i, args.turns)
                i += 1
            app.wait_for_index(None)
            ready = [t for t, s in snaps if s.stage == "ready"]
            out["seconds_to_index_complete"] = round(ready[-1] if ready else time.perf_counter() - t0, 2)
            after: list[dict[str, Any]] = []
            for j in range(args.consultations):
                after += consultation_turns(consultation, calls, i + j, args.turns)
            retriever = app.retriever
            out["index"] = _index_facts(snaps, retriever)
            out["turns_during_build"] = summarize_turns(during)
            out["turns_after_build"] = summarize_turns(after)
            out["turn_detail"] = {"during": during, "after": after}
            out["load_at_end"] = load()
            if label == "warm" and retriever is not None:
                out["recall"] = recall_before_after(retriever, args)
    finally:
        remove()
    return out


def _index_facts(snaps: list[tuple[float, Any]], retriever: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"progress_snapshots": len(snaps)}
    if snaps:
        last = snaps[-1][1]
        embed = [(t, s) for t, s in snaps if s.stage == "embed"]
        facts.update(
            chunks=last.chunks,
            reused_vectors=last.reused,
            embedded=last.to_embed,
            stages=[f"{t:.1f}s {s.line()}" for t, s in snaps if s.stage != "embed"],
        )
        build = [t for t, s in snaps if s.stage in ("prepare", "ready")]
        facts["loaded_not_built"] = last.message == "loaded"
        if len(build) >= 2 and last.chunks and last.message != "loaded":
            facts["build_seconds"] = round(build[-1] - build[0], 2)
            facts["chunks_per_s"] = round(last.chunks / max(build[-1] - build[0], 1e-9), 1)
        if embed:
            facts["embed_chunks_per_s"] = embed[-1][1].rate_per_s
    if retriever is not None:
        m = retriever.manifest
        facts.update(n_chunks=m.n_chunks, manifest_build_seconds=m.build_seconds, kind=m.index_kind)
    return facts


class _Queries:
    """Query vectors computed once (batched), so before/after compare rankings, not encoders."""

    def __init__(self, embedder: Any, questions: list[str]) -> None:
        vecs = embedder.encode(questions)
        self._by_text = {q: v for q, v in zip(questions, vecs, strict=True)}
        self._embedder = embedder

    def encode_query(self, query: str) -> np.ndarray:
        vec = self._by_text.get(query)
        return vec if vec is not None else self._embedder.encode_query(query)


def recall_before_after(retriever: Any, args: argparse.Namespace) -> dict[str, Any]:
    """recall@k of the app's index (int8 artifact vectors) vs the same index with float32
    vectors (the float cache of the artifact build: what embedding at start-up gives)."""
    from retrieval import dense
    from retrieval.artifact import text_key
    from retrieval.builder import embedding_text
    from retrieval.evaluation import medquad_cases
    from retrieval.hybrid import HybridRetriever

    cases = medquad_cases(args.corpus_limit)
    cases = cases[:: max(1, len(cases) // args.questions)][: args.questions]
    queries = _Queries(retriever.embedder, [c.question for c in cases])
    after = HybridRetriever(retriever.chunks, retriever.vectors, retriever.bm25, queries, retriever.manifest)  # type: ignore[arg-type]
    variants = {"after_int8_artifact": after}
    out: dict[str, Any] = {"questions": len(cases), "corpus_chunks": len(retriever.chunks)}
    cache = Path(args.float_cache) if args.float_cache else None
    if cache is not None and cache.with_suffix(".keys.npy").is_file():
        keys = np.load(cache.with_suffix(".keys.npy"))
        vecs = np.load(cache.with_suffix(".vecs.npy"))
        row = {bytes(k): i for i, k in enumerate(keys)}
        wanted = [row.get(text_key(embedding_text(c)), -1) for c in retriever.chunks]
        if min(wanted) < 0:
            out["before_float32"] = "float cache does not cover this corpus"
            return _recall(out, variants, cases)
        floats = vecs[np.asarray(wanted)]
        before_index = dense.build_index(floats, "flat")
        variants = {
            "before_float32": HybridRetriever(
                retriever.chunks,
                before_index,
                retriever.bm25,
                queries,
                retriever.manifest,  # type: ignore[arg-type]
            ),
            **variants,
        }
    return _recall(out, variants, cases)


def _recall(out: dict[str, Any], variants: dict[str, Any], cases: list[Any]) -> dict[str, Any]:
    from retrieval.evaluation import recall_at_k

    for name, r in variants.items():
        out[name] = {}
        for mode in ("dense", "hybrid", "bm25"):
            res = recall_at_k(r, cases, mode)
            out[name][mode] = {f"recall@{k}": round(v, 4) for k, v in res.recall.items()}
    if isinstance(out.get("before_float32"), dict):
        out["delta_recall@10"] = {
            mode: round(
                out["after_int8_artifact"][mode]["recall@10"] - out["before_float32"][mode]["recall@10"], 4
            )
            for mode in ("dense", "hybrid")
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="fresh data dir (default: a temp dir)")
    parser.add_argument("--corpus-limit", type=int, default=None, help="MedQuAD pairs (default: all)")
    parser.add_argument("--turns", type=int, default=4, help="turns per consultation")
    parser.add_argument("--consultations", type=int, default=2, help="consultations after the build")
    parser.add_argument("--max-consultations", type=int, default=3, help="at most this many during the build")
    parser.add_argument("--questions", type=int, default=400, help="held-aside MedQuAD questions for recall")
    parser.add_argument(
        "--float-cache", default="/tmp/artbuild/cache", help="float32 cache of build-artifact"
    )
    parser.add_argument("--no-artifact", action="store_true", help="embed everything (the old first run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="medkg-first-run-"))
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs = [start_once("cold", data_dir, args), start_once("warm", data_dir, args)]
    artifact = REPO / "retrieval" / "data" / "minilm-l6-v2.int8.vec"
    report = {
        "benchmark": "first run: start to serving, to a complete index, turn latency during/after the build",
        "date": started,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "shared 2-vCPU container; other engineers' jobs ran at the same time (load below)",
        },
        "config": {
            "corpus_limit": args.corpus_limit,
            "prebuilt_vectors": not args.no_artifact,
            "artifact_bytes": artifact.stat().st_size if artifact.is_file() else None,
            "turns_per_consultation": args.turns,
        },
        "targets": {"index_complete_s": 300, "turn_p95_s_after": 3, "turn_p95_s_during_build": 10},
        "runs": runs,
        "summary": {
            r["label"]: {
                "seconds_to_serving": r.get("seconds_to_serving"),
                "seconds_to_index_complete": r.get("seconds_to_index_complete"),
                "chunks_per_s": r.get("index", {}).get("chunks_per_s"),
                "first_turn_s": r["turns_during_build"]["first_turn_s"]
                or r["turns_after_build"]["first_turn_s"],
                "turn_p95_during_build_s": r["turns_during_build"]["p95_s"],
                "turn_p95_after_build_s": r["turns_after_build"]["p95_s"],
                "load": [r["load_at_start"], r.get("load_at_end")],
            }
            for r in runs
        },
    }
    if "recall" in runs[-1]:
        report["recall"] = runs[-1]["recall"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
