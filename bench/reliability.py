"""Recovery times of a real ``medkg serve`` under injected faults (issue 15).

One ``medkg serve`` on a temporary data dir (embedded ArcadeDB + llama.cpp, rate limits on).
For each fault it SIGKILLs the target and measures, from the kill:

* ``healthy_s``: until /healthz says the component (and the whole) is ``ok`` again;
* ``first_normal_turn_s``: until a consultation turn, sent again every 0.3 s, is answered 200
  without ``degraded`` (the turns in between are counted: 503 / degraded / other);

faults: the graph child, the LLM child (``--repeats`` times each), and medkg serve itself
(kill -9, orphans counted, then started again on the same data dir: ``restart_to_healthy_s``).
Last, a burst of GETs from one address shows admitted vs throttled (429) requests.

    .venv/bin/python bench/reliability.py [--repeats 3] [--burst 150]

Writes bench/results/reliability.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# `python bench/reliability.py` puts bench/ first on sys.path, where bench/kg.py would shadow kg.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from tests.reliability.served import ServedMedkg, alive, processes_with, wait_until  # noqa: E402

RESULT = ROOT / "bench" / "results" / "reliability.json"


def _component_ok(served: ServedMedkg, key: str) -> bool:
    body = served.health() or {}
    component = (body.get("components") or {}).get(key) or {}
    return bool(component.get("status") == "ok" and body.get("status") == "ok")


def _fault(served: ServedMedkg, key: str, session_id: str) -> dict[str, Any]:
    victim = served.child_pid(key)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    counts = {"503": 0, "degraded": 0, "other": 0}
    first_normal: float | None = None
    healthy: float | None = None
    statuses: set[str] = set()
    while time.monotonic() - killed < 180 and (first_normal is None or healthy is None):
        if healthy is None:
            statuses.add(str(served.health_status()))
            if _component_ok(served, key):
                healthy = time.monotonic() - killed
        if first_normal is None:
            response = served.say(session_id, "don't know")
            if response.status_code == 200 and not response.json().get("degraded"):
                first_normal = time.monotonic() - killed
            elif response.status_code == 503:
                counts["503"] += 1
            elif response.status_code == 200:
                counts["degraded"] += 1
            else:
                counts["other"] += 1
        time.sleep(0.3)
    return {
        "healthy_s": None if healthy is None else round(healthy, 2),
        "first_normal_turn_s": None if first_normal is None else round(first_normal, 2),
        "turns_meanwhile": counts,
        "health_statuses_seen": sorted(statuses),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    healthy = [r["healthy_s"] for r in runs if r["healthy_s"] is not None]
    turns = [r["first_normal_turn_s"] for r in runs if r["first_normal_turn_s"] is not None]
    return {
        "runs": runs,
        "healthy_s_median": round(statistics.median(healthy), 2) if healthy else None,
        "healthy_s_max": max(healthy) if healthy else None,
        "first_normal_turn_s_median": round(statistics.median(turns), 2) if turns else None,
        "recovered": len(healthy) == len(runs),
    }


def _burst(served: ServedMedkg, session_id: str, n: int) -> dict[str, Any]:
    admitted = throttled = other = 0
    for _ in range(n):
        status = served.client.get(f"/v1/consultations/{session_id}").status_code
        if status == 200:
            admitted += 1
        elif status == 429:
            throttled += 1
        else:
            other += 1
    return {"requests": n, "admitted": admitted, "throttled": throttled, "other": other}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burst", type=int, default=150)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="medkg-reliability-") as tmp:
        data_dir = Path(tmp) / "data"
        served = ServedMedkg(data_dir, env={"MEDKG_SERVER__RATE_LIMITS__ENABLED": "true"})
        try:
            first_start = served.start()
            print(f"medkg serve healthy after {first_start:.1f} s (first run: graph load)", flush=True)
            opened = served.open("I have a fever, a cough and a sore throat since three days")
            opened.raise_for_status()
            session_id = opened.json()["session_id"]
            faults: dict[str, Any] = {}
            for key in ("graph", "llm"):
                runs = []
                for i in range(args.repeats):
                    run = _fault(served, key, session_id)
                    print(f"{key} kill {i + 1}: {run}", flush=True)
                    runs.append(run)
                    time.sleep(2)
                faults[f"{key}_kill"] = _summary(runs)
            children = served.kill9()
            wait_until(lambda: not any(alive(p) for p in children), 10)
            orphans = [p for p in children if alive(p)] + processes_with(str(data_dir))
            restart = served.start()
            after = served.say(session_id, "no")
            faults["serve_kill9_restart"] = {
                "children_before_kill": len(children),
                "orphans_after_kill": len(set(orphans)),
                "restart_to_healthy_s": round(restart, 2),
                "consultation_continues": after.status_code == 200,
            }
            print(f"serve kill -9: {faults['serve_kill9_restart']}", flush=True)
            time.sleep(1)
            burst = _burst(served, session_id, args.burst)
            print(f"burst: {burst}", flush=True)
        finally:
            served.stop()

    result = {
        "benchmark": "reliability",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "first_start_s": round(first_start, 2),
        "faults": faults,
        "rate_limit_burst": burst,
        "notes": (
            "Times from SIGKILL. healthy_s: /healthz component and overall back to ok. "
            "first_normal_turn_s: a turn retried every 0.3 s answered 200 without 'degraded'. "
            "Restart backoff starts at 0.5 s and doubles per consecutive crash (cap 8 s)."
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
