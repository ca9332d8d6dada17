"""Rebuild ``retrieval/data/medquad.jsonl.gz`` from the MedQuAD XML (maintainers only).

Usage: ``python -m retrieval.pack_medquad [MEDQUAD_DIR [BENCHMARK_DIR]]``
(defaults: ../shared/data/text/medquad and ../shared/data/benchmarks). Pairs whose answer
copies benchmark text (see :mod:`retrieval.guard`) are left out and listed on stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path

from retrieval.corpus import MEDQUAD_FILE, pack_medquad
from retrieval.guard import BenchmarkGuard

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else SHARED / "text" / "medquad"
    benchmarks = Path(argv[1]) if len(argv) > 1 else SHARED / "benchmarks"
    if not source.is_dir():
        print(f"MedQuAD directory not found: {source}", file=sys.stderr)
        return 2
    guard = BenchmarkGuard.from_benchmark_dir(benchmarks) if benchmarks.is_dir() else None
    if guard is None:
        print(f"warning: no benchmark files at {benchmarks}; shipping without the fingerprint screen")
    count, rejected = pack_medquad(source, MEDQUAD_FILE, reject=guard.reason if guard else None)
    for doc_id, why in rejected:
        print(f"left out {doc_id}: {why}")
    print(f"wrote {count} answered pairs to {MEDQUAD_FILE} ({len(rejected)} left out)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
