"""LLM layer benchmark: embedded server cold start, and medkg's client overhead vs raw HTTP.

Run: ``.venv/bin/python bench/llm.py`` -> ``bench/results/llm.json``.

1. Cold start: the embedded llama.cpp server started from a fresh process (the supervisor
   spawns a new Python each time) until its /health answers 200; ``--cold-starts`` runs.
2. Streaming, on one server: the same prompts through ``OpenAIChatModel.open_stream`` and
   through a raw ``httpx`` SSE request with the identical body, interleaved (the order flips
   every round, so background load hits both alike), prompt caching off so every request
   processes its prompt. Per request: time to first token (TTFT) and generation tokens/s =
   (completion tokens - 1) / (time of last piece - time of first piece).
   The headline is p50 tokens/s through medkg divided by p50 direct (target >= 0.95).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.llm import ChatMessage, OpenAIChatModel  # noqa: E402
from assistant.processes.embedded import embedded_llm_service, llm_base_url  # noqa: E402
from assistant.settings import Settings  # noqa: E402

PROMPTS = [
    "Explain in a few sentences what a fever is.",
    "List common causes of a persistent cough.",
    "Describe how the heart pumps blood through the body.",
    "What should a person do after a minor burn? Give several steps.",
]


def cold_starts(settings: Settings, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        service = embedded_llm_service(settings)
        started = time.perf_counter()
        service.start()
        times.append(time.perf_counter() - started)
        service.stop()
    return times


def medkg_request(model: OpenAIChatModel, prompt: str, max_tokens: int) -> dict[str, float]:
    messages = [ChatMessage(role="user", content=prompt)]
    cpu = time.process_time()
    started = time.perf_counter()
    stream = model.open_stream(messages, temperature=0.0, max_tokens=max_tokens, cache_prompt=False)
    stamps = [time.perf_counter() for _ in stream]
    assert stream.response is not None
    return _metrics(started, stamps, stream.response.usage.completion_tokens, time.process_time() - cpu)


def direct_request(
    client: httpx.Client, url: str, model: str, prompt: str, max_tokens: int
) -> dict[str, float]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0.0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "cache_prompt": False,
    }
    stamps: list[float] = []
    tokens = 0
    cpu = time.process_time()
    started = time.perf_counter()
    with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                if choice.get("delta", {}).get("content"):
                    stamps.append(time.perf_counter())
    return _metrics(started, stamps, tokens, time.process_time() - cpu)


def _metrics(started: float, stamps: list[float], tokens: int, cpu_s: float) -> dict[str, float]:
    nan = float("nan")
    cpu_per_token_us = cpu_s / tokens * 1e6 if tokens else nan
    if len(stamps) < 2 or tokens < 2:
        return {"ttft_s": nan, "tokens_per_s": nan, "tokens": float(tokens), "cpu_us_per_token": nan}
    return {
        "ttft_s": stamps[0] - started,
        "tokens_per_s": (tokens - 1) / (stamps[-1] - stamps[0]),
        "tokens": float(tokens),
        "cpu_us_per_token": cpu_per_token_us,
    }


def _sse_body(chunks: int) -> bytes:
    head = '{"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":'
    events = [
        f'data: {head}[{{"index":0,"delta":{{"content":" tok{i}"}},"finish_reason":null}}]}}\n\n'
        for i in range(chunks)
    ]
    usage = f'"usage":{{"prompt_tokens":1,"completion_tokens":{chunks},"total_tokens":{chunks + 1}}}'
    events.append(f"data: {head}[],{usage}}}\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


def replay_rates(chunks: int = 5000, rounds: int = 3) -> dict[str, float]:
    """Chunks/s each client can parse from an in-memory SSE reply: pure client cost, no server."""
    from assistant.llm._http import http as openai_http

    body = _sse_body(chunks)
    headers = {"content-type": "text/event-stream"}

    def medkg_once() -> int:
        transport = openai_http.MockTransport(
            lambda request: openai_http.Response(200, content=body, headers=headers)
        )
        with OpenAIChatModel(
            "http://replay/v1", http_client=openai_http.Client(transport=transport)
        ) as model:
            return sum(1 for _ in model.stream([ChatMessage(role="user", content="x")]))

    def direct_once() -> int:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers=headers))
        with httpx.Client(transport=transport) as client:
            return len(direct_request(client, "http://replay/v1", "m", "x", 1) and [0] * chunks)

    rates: dict[str, float] = {}
    for name, once in (("medkg", medkg_once), ("direct", direct_once)):
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            once()
            best = min(best, time.process_time() - started)
        rates[f"{name}_chunks_per_cpu_s"] = round(chunks / best)
    rates["medkg_us_per_chunk"] = round(1e6 / rates["medkg_chunks_per_cpu_s"], 1)
    rates["direct_us_per_chunk"] = round(1e6 / rates["direct_chunks_per_cpu_s"], 1)
    return rates


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    ttft = [row["ttft_s"] for row in rows if row["ttft_s"] == row["ttft_s"]]
    tps = [row["tokens_per_s"] for row in rows if row["tokens_per_s"] == row["tokens_per_s"]]
    return {
        "requests": len(rows),
        "ttft_p50_s": round(statistics.median(ttft), 4) if ttft else float("nan"),
        "tokens_per_s_p50": round(statistics.median(tps), 2) if tps else float("nan"),
        "tokens_per_s_mean": round(statistics.fmean(tps), 2) if tps else float("nan"),
        "completion_tokens_mean": round(statistics.fmean(row["tokens"] for row in rows), 1),
        # Client-side CPU per generated token: what the client itself costs, independent of load.
        "client_cpu_us_per_token_p50": round(statistics.median(row["cpu_us_per_token"] for row in rows), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3, help="rounds over all prompts")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "llm.json")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="medkg-bench-llm-"))
    settings = Settings(data_dir=data_dir)
    load_before = os.getloadavg()

    replay = replay_rates()
    print(f"client parse rates: {replay}", flush=True)
    starts = cold_starts(settings, args.cold_starts)
    print(f"cold start: {[round(s, 2) for s in starts]} s", flush=True)

    medkg_rows: list[dict[str, float]] = []
    direct_rows: list[dict[str, float]] = []
    with embedded_llm_service(settings) as service:
        url = llm_base_url(service)
        model = OpenAIChatModel(url, model=settings.llm.model, timeout_s=300)
        # No keep-alive: llama.cpp closes idle connections, and a reused dead one would fail
        # the direct baseline (medkg's client retries such a request; the baseline must not need to).
        client = httpx.Client(
            timeout=httpx.Timeout(300, connect=5), limits=httpx.Limits(max_keepalive_connections=0)
        )
        # One warm-up each (first request pays one-off allocations), not recorded.
        medkg_request(model, PROMPTS[0], 8)
        direct_request(client, url, settings.llm.model, PROMPTS[0], 8)
        for rep in range(args.reps):
            for index, prompt in enumerate(PROMPTS):
                pair = [
                    ("medkg", lambda p=prompt: medkg_request(model, p, args.max_tokens)),
                    (
                        "direct",
                        lambda p=prompt: direct_request(client, url, settings.llm.model, p, args.max_tokens),
                    ),
                ]
                if (rep + index) % 2:
                    pair.reverse()
                for name, run in pair:
                    (medkg_rows if name == "medkg" else direct_rows).append(run())
            print(f"round {rep + 1}/{args.reps} done", flush=True)
        model.close()
        client.close()

    medkg = summary(medkg_rows)
    direct = summary(direct_rows)
    result = {
        "benchmark": "llm",
        "model": settings.llm.model,
        "server": "embedded llama.cpp (xllamacpp)",
        "settings": {
            "threads": settings.llm.threads,
            "parallel_slots": settings.llm.parallel_slots,
            "max_tokens": args.max_tokens,
            "prompts": len(PROMPTS),
            "reps": args.reps,
            "cache_prompt": False,
            "temperature": 0.0,
        },
        "cold_start_s": {
            "runs": [round(s, 3) for s in starts],
            "p50": round(statistics.median(starts), 3),
        },
        "stream_medkg": medkg,
        "stream_direct": direct,
        "throughput_ratio_medkg_over_direct": round(
            medkg["tokens_per_s_p50"] / direct["tokens_per_s_p50"], 3
        ),
        "ttft_ratio_medkg_over_direct": round(medkg["ttft_p50_s"] / direct["ttft_p50_s"], 3),
        "target_throughput_ratio": 0.95,
        "client_parse_replay": replay,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
