"""QA evaluation throughput: questions/s at concurrency 1 vs 4 vs 8 against the embedded server.

The same items in every pass, temperature 0, llama.cpp prompt caching off, and a FRESH
embedded server per pass (a server that has seen the prompts answers a second pass much
faster, which would flatter the later passes). Ratios are against concurrency 1 measured in
the same run. Also reports how many predictions match the concurrency-1 pass (batched
decoding may change near-tie answers of a tiny model).

    .venv/bin/python bench/eval.py [--items 24] [--suite medqa] [--concurrency 1 4 8]
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.llm import create_chat_model  # noqa: E402
from assistant.processes.embedded import embedded_llm_service, llm_base_url  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from eval.qa.cache import ResultCache  # noqa: E402
from eval.qa.loaders import load_suite  # noqa: E402
from eval.qa.modes import DEFAULT_MAX_TOKENS, Mode  # noqa: E402
from eval.qa.runner import QARunner, RunOptions  # noqa: E402

SHARED = Path(os.environ.get("MEDKG_SHARED_DATA", REPO.parent / "shared" / "data"))


def one_pass(settings: Settings, items: list, concurrency: int, max_tokens: int, work: Path) -> dict:
    with embedded_llm_service(settings) as service:
        chat = create_chat_model(settings.llm.model_copy(update={"base_url": llm_base_url(service)}))
        options = RunOptions(
            concurrency=concurrency, max_tokens={**DEFAULT_MAX_TOKENS, Mode.DIRECT: max_tokens}
        )
        runner = QARunner(chat=chat, cache=ResultCache(work / f"cache-c{concurrency}.jsonl"), options=options)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        run = runner.run(items, Mode.DIRECT)
        seconds = time.perf_counter() - started
        chat.close()
    return {
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "questions_per_s": round(len(items) / seconds, 3),
        "errors": run.errors,
        "accuracy": round(run.score.accuracy, 4),
        "mean_latency_s": round(run.score.mean_latency_s, 3),
        "loadavg_1min_at_start": round(load_before, 2),
        "predictions": {r.item_id: r.prediction for r in run.results},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--suite", default="medqa")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS[Mode.DIRECT])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "eval.json")
    args = parser.parse_args()

    items = load_suite(args.suite, SHARED / "benchmarks", limit=args.items)
    with tempfile.TemporaryDirectory(prefix="medkg-bench-eval-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        passes = [one_pass(settings, items, c, args.max_tokens, Path(tmp)) for c in args.concurrency]
    base_rate = passes[0]["questions_per_s"]
    base_predictions = dict(passes[0]["predictions"])
    for p in passes:
        p["ratio_vs_c1"] = round(p["questions_per_s"] / base_rate, 2)
        predictions = p.pop("predictions")
        same = sum(predictions.get(k) == v for k, v in base_predictions.items())
        p["predictions_equal_to_first_pass"] = f"{same}/{len(base_predictions)}"
    result = {
        "benchmark": "eval qa throughput",
        "suite": args.suite,
        "mode": "direct",
        "items": len(items),
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "cache_prompt": False,
        "server": f"embedded llama.cpp (xllamacpp), fresh per pass, {settings.llm.parallel_slots} slots, "
        f"{settings.llm.threads} threads, model {settings.llm.model}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "passes": passes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for p in passes:
        print(f"concurrency {p['concurrency']}: {p['questions_per_s']} q/s (x{p['ratio_vs_c1']} vs c1)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
