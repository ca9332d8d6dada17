"""Embedded LLM throughput by thread count, on a quiet machine and beside one busy process.

    .venv/bin/python bench/llm_threads.py [--threads 1 2 ...] [--out bench/results/llm_threads.json]

llama.cpp's worker threads spin: with a thread on every core, any other busy process stalls them.
The default (`assistant.settings.default_llm_threads`: CPUs - 1, 1 to 8) comes from this bench.
The busy process is measured in the same run as the quiet baseline; ratios are what to read.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.processes.embedded_llm import default_gguf_path, server_argv  # noqa: E402
from assistant.settings import default_llm_threads  # noqa: E402

PROMPT = "Describe the symptoms of influenza in detail."


def _spin() -> None:
    while True:
        pass


def _tokens_per_second(port: int, max_tokens: int = 96) -> float:
    body = {"model": "m", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": max_tokens}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json.dumps({**body, "temperature": 0}).encode(),
        {"Content-Type": "application/json"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        usage = json.load(response)["usage"]
    return float(usage["completion_tokens"]) / (time.perf_counter() - started)


def _median(port: int, runs: int = 3) -> float:
    return sorted(_tokens_per_second(port) for _ in range(runs))[runs // 2]


def measure(threads: int, port: int) -> dict[str, float]:
    argv = server_argv(port, default_gguf_path(), alias="m", threads=threads, context_length=2048, parallel=1)
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        _tokens_per_second(port, 8)  # warm-up
        quiet = _median(port)
        hog = multiprocessing.Process(target=_spin, daemon=True)
        hog.start()
        time.sleep(1.0)
        try:
            busy = _median(port)
        finally:
            hog.terminate()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "threads": threads,
        "quiet_tok_s": round(quiet, 1),
        "beside_busy_tok_s": round(busy, 1),
        "busy_over_quiet": round(busy / quiet, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llm_threads.json")
    args = parser.parse_args()
    rows = [measure(t, 18800 + t) for t in args.threads]
    for row in rows:
        print(row, flush=True)
    result = {"cpus_default_threads": default_llm_threads(), "rows": rows}
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
