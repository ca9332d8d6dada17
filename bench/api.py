"""Bounded load test of the HTTP API on loopback against the embedded stack.

N concurrent consultations of several turns each (start, then answers to the follow-up
questions or free-text messages, then a read-back), after a baseline of the same script run
by ONE consultation in the same process. Checks: no errors, no lost or crossed messages
(each session's transcript holds exactly its own patient messages, in order). Reports
latency p50/p95 per request type and throughput, and the ratios to the baseline.

    .venv/bin/python bench/api.py [--sessions 20] [--turns 4] [--data-dir DIR]

Writes bench/results/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# `python bench/api.py` puts bench/ first on sys.path, where bench/kg.py would shadow the kg package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results" / "api.json"
OPENINGS = [
    "I have had a fever and a cough for three days",
    "I have a headache and my neck is stiff",
    "I have chest pain when I breathe in",
    "My throat is sore and I feel tired",
    "I have stomach pain and diarrhea since yesterday",
    "I feel short of breath and my ankles are swollen",
    "I have a rash on my arms that itches",
    "I have pain when I urinate and need to go often",
]
EXTRAS = ["nausea", "a runny nose", "back pain", "dizziness", "muscle aches", "chills"]
ANSWERS = ["Yes", "No", "Don't know"]


@dataclass
class Run:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    crossed: list[str] = field(default_factory=list)
    sessions: int = 0
    requests: int = 0
    wall_s: float = 0.0


async def _request(client: httpx.AsyncClient, run: Run, kind: str, method: str, url: str, **kw: Any) -> Any:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        run.errors.append(f"{kind}: {type(exc).__name__}")
        return None
    run.latencies[kind].append(time.perf_counter() - started)
    run.requests += 1
    if response.status_code >= 300:
        run.errors.append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
        return None
    return response.json()


async def consultation(client: httpx.AsyncClient, run: Run, index: int, turns: int) -> None:
    """One scripted consultation; every free-text message carries this session's tag."""
    tag = f"(patient {index})"
    opening = f"{OPENINGS[index % len(OPENINGS)]} {tag}"
    sent = [opening]
    result = await _request(
        client,
        run,
        "start",
        "POST",
        "/v1/consultations",
        json={"message": opening, "age": 20 + index % 60, "sex": "MF"[index % 2]},
    )
    if result is None:
        return
    session = result["session_id"]
    for turn in range(turns - 1):
        if result.get("follow_up"):
            answer = ANSWERS[(index + turn) % len(ANSWERS)]
            kind, body = "answer", {"answer": answer}
            sent.append(answer)
        else:
            text = f"I also have {EXTRAS[(index + turn) % len(EXTRAS)]} {tag} turn {turn}"
            kind, body = "message", {"text": text}
            sent.append(text)
        result = await _request(client, run, kind, "POST", f"/v1/consultations/{session}/messages", json=body)
        if result is None:
            return
        if result["session_id"] != session:
            run.crossed.append(f"session {index}: answered for {result['session_id']}")
    state = await _request(client, run, "get", "GET", f"/v1/consultations/{session}")
    if state is None:
        return
    patient = [entry["text"] for entry in state["transcript"] if entry["role"] == "patient"]
    if patient != sent:
        run.crossed.append(f"session {index}: transcript {patient!r} != sent {sent!r}")
    run.sessions += 1


async def run_load(base_url: str, sessions: int, turns: int, offset: int) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=sessions + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(consultation(client, run, offset + i, turns) for i in range(sessions)))
        run.wall_s = time.perf_counter() - started
    return run


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(run: Run) -> dict[str, Any]:
    turns = sum(len(v) for k, v in run.latencies.items() if k != "get")
    return {
        "sessions_completed": run.sessions,
        "requests": run.requests,
        "errors": run.errors,
        "crossed_or_lost": run.crossed,
        "wall_s": round(run.wall_s, 2),
        "turns_per_s": round(turns / run.wall_s, 3) if run.wall_s else None,
        "latency_s": {
            kind: {
                "n": len(values),
                "p50": round(statistics.median(values), 3),
                "p95": round(_percentile(values, 0.95), 3),
                "max": round(max(values), 3),
            }
            for kind, values in sorted(run.latencies.items())
        },
    }


def _measure(url: str, args: argparse.Namespace, echo: Any) -> tuple[Run, Run]:
    echo(f"… baseline: 1 consultation x {args.turns} turns")
    baseline = asyncio.run(run_load(url, 1, args.turns, offset=1000))
    echo(f"… load: {args.sessions} concurrent consultations x {args.turns} turns")
    load = asyncio.run(run_load(url, args.sessions, args.turns, offset=0))
    return baseline, load


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=20, help="concurrent consultations")
    parser.add_argument("--turns", type=int, default=4, help="turns per consultation (start included)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "medkg-bench-api",
        help="data dir of the embedded stack (kept between runs: graph and index are reused)",
    )
    parser.add_argument(
        "--corpus-limit", type=int, default=400, help="retrieval corpus size (the bench is about the API)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--url", help="load an already running `medkg serve` at this URL instead of starting a stack"
    )
    args = parser.parse_args()

    echo = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    stack_info: dict[str, Any]
    if args.url:
        stack_info = {"target": "running medkg serve (embedded defaults)", "url": args.url}
        baseline, load = _measure(args.url, args, echo)
    else:
        from assistant.app import open_app
        from assistant.settings import RetrievalSettings, Settings
        from ui.server import BackgroundServer, create_app

        # A fresh sessions file per run: transcripts are compared with what this run sent.
        sessions_file = args.data_dir / "sessions.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{sessions_file}{suffix}").unlink(missing_ok=True)
        settings = Settings(
            data_dir=args.data_dir, retrieval=RetrievalSettings(corpus_limit=args.corpus_limit)
        )
        with open_app(settings, echo=echo) as assembled:
            app = create_app(assembled.settings, assembled=assembled)
            with BackgroundServer(app) as server:
                baseline, load = _measure(server.url, args, echo)
            llm = assembled.settings.llm
        stack_info = {
            "target": "embedded stack started by the bench",
            "llm_parallel_slots": llm.parallel_slots,
            "llm_threads": llm.threads,
            "retrieval_corpus_limit": args.corpus_limit,
        }

    base, loaded = summarize(baseline), summarize(load)
    ratios = {
        kind: round(loaded["latency_s"][kind]["p50"] / base["latency_s"][kind]["p50"], 2)
        for kind in loaded["latency_s"]
        if kind in base["latency_s"]
    }
    result = {
        "benchmark": "api",
        "what": f"{args.sessions} concurrent consultations x {args.turns} turns over HTTP on loopback, "
        "embedded stack (llama.cpp SmolLM2-135M, ArcadeDB Bolt, FAISS+BM25)",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {"sessions": args.sessions, "turns": args.turns, **stack_info},
        "baseline_1_session": base,
        "load": loaded,
        "p50_latency_ratio_load_vs_baseline": ratios,
        "throughput_ratio_load_vs_baseline": (
            round(loaded["turns_per_s"] / base["turns_per_s"], 2)
            if loaded["turns_per_s"] and base["turns_per_s"]
            else None
        ),
        "ok": not load.errors and not load.crossed and load.sessions == args.sessions,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("ok", "p50_latency_ratio_load_vs_baseline")}, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
