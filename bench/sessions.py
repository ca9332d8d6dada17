"""Shared sessions: what the Postgres checkpointer costs per turn against SQLite, and turns/s
through one and two replicas on loopback.

* per turn: the same consultation script (a start, then free-text messages) through
  ``Consultation`` on the in-memory fake graph with the LLM steps off, so that the checkpointer
  and the lock are what differs; SQLite (the embedded default: WAL, synchronous=NORMAL) and
  Postgres (a throwaway local cluster, fsync on, synchronous_commit on) alternate in rounds.
* throughput: replicas are separate processes (``--replica``: the HTTP API over the same
  fakes, sessions in the one Postgres); concurrent clients, each on its own consultation,
  send messages round-robin over the replicas for a fixed time.

    .venv/bin/python bench/sessions.py [--turns 10] [--seconds 10] [--clients 8]

Writes bench/results/sessions.json. The graph and LLM are fakes: this measures the session
layer, not a consultation's real latency (bench/api.py does that on the embedded stack).
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# `python bench/sessions.py` puts bench/ first on sys.path, where bench/kg.py would shadow kg.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from assistant.agent.state import AgentOptions  # noqa: E402
from assistant.settings import RateLimitSettings, ServerSettings, SessionSettings, Settings  # noqa: E402

RESULTS = REPO / "bench" / "results" / "sessions.json"
NO_LLM = AgentOptions(llm_phrasing=False, llm_extraction=False, llm_summary=False)
MESSAGES = ["I have a fever", "I also cough", "my head hurts", "I feel tired", "no rash", "a sore throat"]


def fake_consultation(settings: Settings) -> Any:
    from assistant.agent.context import AgentContext
    from assistant.consultation import Consultation
    from tests.fixtures.agent import FakeGraphStore, FakeRetriever, ScriptedChatModel

    runtime = AgentContext(
        chat_model=ScriptedChatModel(fail=True),
        graph=FakeGraphStore(),
        retriever=FakeRetriever(),
        embedder_factory=None,
    )
    return Consultation(runtime, settings, options=NO_LLM)


def per_turn_ms(settings: Settings, consultations: int, turns: int) -> list[float]:
    """Milliseconds per turn (start and messages) of a scripted run."""
    times: list[float] = []
    with fake_consultation(settings) as c:
        c.send(c.start("warm-up").session_id, "warm-up")
        for _ in range(consultations):
            t0 = time.perf_counter()
            sid = c.start(MESSAGES[0]).session_id
            times.append(time.perf_counter() - t0)
            for i in range(turns):
                t0 = time.perf_counter()
                c.send(sid, MESSAGES[1 + i % (len(MESSAGES) - 1)])
                times.append(time.perf_counter() - t0)
    return [1000 * t for t in times]


def summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "turns": len(ms),
        "mean_ms": round(statistics.fmean(ms), 2),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


# --------------------------------------------------------------------------- replicas


def serve_replica(port: int, url: str, data_dir: str) -> None:
    """The --replica mode: the HTTP API over the fakes, sessions in the shared Postgres."""
    import uvicorn

    from ui.server import create_app

    settings = Settings(
        data_dir=Path(data_dir),
        sessions=SessionSettings(url=SecretStr(url)),
        # Load from one address is the point here: no rate limits.
        server=ServerSettings(rate_limits=RateLimitSettings(enabled=False)),
    )
    consultation = fake_consultation(settings)
    app = create_app(settings, consultation=consultation, with_ui=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_replicas(n: int, url: str, data_dir: str) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    from assistant.processes.supervisor import free_port

    procs, urls = [], []
    for _ in range(n):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--replica", str(port), "--url", url, "--data-dir", data_dir],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    for base in urls:
        while True:
            try:
                if httpx.get(f"{base}/v1/consultations/x", timeout=2).status_code == 404:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {base} did not start")
            time.sleep(0.3)
    return procs, urls


def throughput(urls: list[str], clients: int, seconds: float) -> dict[str, Any]:
    done = [0] * clients
    errors: list[str] = []
    stop = threading.Event()
    ready = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        with httpx.Client(timeout=60) as http:
            r = http.post(f"{urls[k % len(urls)]}/v1/consultations", json={"message": MESSAGES[0]})
            sid = r.json()["session_id"]
            ready.wait()
            i = 0
            while not stop.is_set():
                base = urls[(k + i) % len(urls)]
                r = http.post(f"{base}/v1/consultations/{sid}/messages", json={"text": MESSAGES[1 + i % 5]})
                if r.status_code != 200:
                    errors.append(f"{r.status_code}")
                else:
                    done[k] += 1
                i += 1

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    elapsed = time.perf_counter() - t0
    return {
        "replicas": len(urls),
        "clients": clients,
        "seconds": round(elapsed, 1),
        "turns": sum(done),
        "turns_per_s": round(sum(done) / elapsed, 1),
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consultations", type=int, default=5)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--replica", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replica:
        serve_replica(args.replica, args.url, args.data_dir)
        return

    from tests.fixtures.postgres import ThrowawayPostgres

    with ThrowawayPostgres(fsync=True) as pg, tempfile.TemporaryDirectory() as tmp:
        sqlite_settings = Settings(data_dir=Path(tmp) / "sqlite")
        pg_settings = Settings(data_dir=Path(tmp) / "pg", sessions=SessionSettings(url=SecretStr(pg.url)))
        # The same server with commits acknowledged before their WAL flush (the durability of
        # SQLite's synchronous=NORMAL: a server crash may lose the last commits, never corrupt).
        async_url = pg.url + "?options=-c%20synchronous_commit%3Doff"
        async_settings = pg_settings.model_copy(
            update={"sessions": SessionSettings(url=SecretStr(async_url))}
        )
        ms: dict[str, list[float]] = {"sqlite": [], "postgres": [], "postgres_synchronous_commit_off": []}
        for _ in range(args.rounds):  # alternate, so that a noisy neighbour hits both
            ms["sqlite"] += per_turn_ms(sqlite_settings, args.consultations, args.turns)
            ms["postgres"] += per_turn_ms(pg_settings, args.consultations, args.turns)
            ms["postgres_synchronous_commit_off"] += per_turn_ms(
                async_settings, args.consultations, args.turns
            )
        per_turn = {name: summary(values) for name, values in ms.items()}
        ratio = per_turn["postgres"]["p50_ms"] / per_turn["sqlite"]["p50_ms"]
        print("per turn p50 (ms):", {name: v["p50_ms"] for name, v in per_turn.items()})

        runs = []
        for n in (1, 2):
            procs, urls = start_replicas(n, pg.url, str(Path(tmp) / "replicas"))  # durable commits
            try:
                runs.append(throughput(urls, args.clients, args.seconds))
                print(f"{n} replica(s): {runs[-1]['turns_per_s']} turns/s, {runs[-1]['errors']} errors")
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(30)

    result = {
        "what": "session layer only: fake graph, LLM steps off; Postgres = local throwaway cluster, fsync on",
        "per_turn": per_turn,
        "postgres_over_sqlite_p50_ratio": round(ratio, 2),
        "postgres_overhead_p50_ms": round(per_turn["postgres"]["p50_ms"] - per_turn["sqlite"]["p50_ms"], 2),
        "postgres_synchronous_commit_off_over_sqlite_p50_ratio": round(
            per_turn["postgres_synchronous_commit_off"]["p50_ms"] / per_turn["sqlite"]["p50_ms"], 2
        ),
        "throughput": runs,
        "two_over_one_replica": round(runs[1]["turns_per_s"] / max(runs[0]["turns_per_s"], 1e-9), 2),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "2 vCPUs shared with other work: replicas, clients and Postgres compete for them",
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("postgres_over_sqlite_p50_ratio", "two_over_one_replica")}))


if __name__ == "__main__":
    main()
