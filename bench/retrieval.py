"""Retrieval benchmark -> bench/results/retrieval.json.

Part 1 (MedQuAD): build time, index size on disk, query latency p50/p95 at k=10 for dense,
BM25 and hybrid, recall@5/@10 of held-aside MedQuAD questions finding their own answer.
Part 2 (scaling): synthetic clustered unit vectors (d=384) at 10k / 100k / 1M: exact
IndexFlatIP (the baseline) vs HNSW and IVF: build time, latency, recall@10 against exact.

Usage: .venv/bin/python bench/retrieval.py [--medquad-limit N] [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss  # noqa: E402

from retrieval import build_or_load_index  # noqa: E402
from retrieval.artifact import ARTIFACT_FILE  # noqa: E402
from retrieval.dense import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, IVF_NPROBE  # noqa: E402
from retrieval.evaluation import medquad_cases, recall_at_k  # noqa: E402

DIM = 384


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {"p50": round(float(np.percentile(arr, 50)), 3), "p95": round(float(np.percentile(arr, 95)), 3)}


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def medquad_part(limit: int | None, max_questions: int, use_artifact: bool = True) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="medkg-bench-"))
    try:
        started = time.perf_counter()
        # The shipped int8 vectors (default) or embedding everything (--no-artifact: the float
        # baseline the artifact must stay within 0.01 recall@10 of).
        retriever = build_or_load_index(
            workdir / "index", limit=limit, artifact=ARTIFACT_FILE if use_artifact else None
        )
        build_s = time.perf_counter() - started
        cases = medquad_cases(limit, every=4, offset=1)
        step = max(1, len(cases) // max_questions)
        cases = cases[::step][:max_questions]
        retriever.search("warm up the model", 10)
        modes: dict[str, Any] = {}
        for mode in ("bm25", "dense", "hybrid"):
            res = recall_at_k(retriever, cases, mode, ks=(1, 5, 10))
            modes[mode] = {
                "recall@1": round(res.recall[1], 4),
                "recall@5": round(res.recall[5], 4),
                "recall@10": round(res.recall[10], 4),
                "latency_ms_k10": _pct(res.latencies_ms),
            }
        m = retriever.manifest
        return {
            "medquad_pairs_indexed": limit or "all",
            "documents": m.n_documents,
            "chunks": m.n_chunks,
            "index_kind": m.index_kind,
            "model": m.model,
            "max_seq_length": m.max_seq_length,
            "chunk_max_words": m.chunk_max_words,
            "vectors": "int8 artifact" if use_artifact else "float32 embedded",
            "reused_vectors": m.reused_vectors,
            "embedded_vectors": m.embedded_vectors,
            "build_seconds": round(build_s, 1),
            "embed_chunks_per_second": round(m.n_chunks / max(build_s, 1e-9), 2),
            "index_bytes_on_disk": _dir_size(workdir / "index"),
            "questions": len(cases),
            "modes": modes,
            "hybrid_p95_target_ms": 20,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def clustered_vectors(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    """Unit vectors around random centres (closer to real embeddings than isotropic noise)."""
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        idx = rng.integers(0, len(centers), m)
        block = centers[idx] + 0.35 * rng.standard_normal((m, DIM)).astype(np.float32) / np.sqrt(DIM) * 4
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def _timed_search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    ids = np.empty((len(queries), k), dtype=np.int64)
    lat = []
    for i, q in enumerate(queries):  # one query at a time, as the app does
        t = time.perf_counter()
        _, found = index.search(q.reshape(1, -1), k)
        lat.append((time.perf_counter() - t) * 1000)
        ids[i] = found[0]
    return ids, lat


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def scaling_part(sizes: list[int], n_queries: int, hnsw_max: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2_000, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    queries = clustered_vectors(n_queries, rng, centers)
    rows = []
    for n in sizes:
        data = clustered_vectors(n, rng, centers)
        row: dict[str, Any] = {"n": n, "dim": DIM, "data_bytes": int(data.nbytes)}
        t = time.perf_counter()
        flat = faiss.IndexFlatIP(DIM)
        flat.add(data)
        row["flat"] = {"build_s": round(time.perf_counter() - t, 2)}
        truth, lat = _timed_search(flat, queries, 10)
        row["flat"]["latency_ms"] = _pct(lat)
        row["flat"]["recall@10"] = 1.0
        base_p50 = row["flat"]["latency_ms"]["p50"]
        del flat

        if n <= hnsw_max:
            t = time.perf_counter()
            hnsw = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            hnsw.add(data)
            hnsw.hnsw.efSearch = HNSW_EF_SEARCH
            build = time.perf_counter() - t
            found, lat = _timed_search(hnsw, queries, 10)
            row["hnsw"] = {
                "params": {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH},
                "build_s": round(build, 2),
                "latency_ms": _pct(lat),
                "recall@10": round(_recall(found, truth), 4),
                "speedup_p50_vs_flat": round(base_p50 / max(_pct(lat)["p50"], 1e-6), 1),
            }
            del hnsw
        else:
            row["hnsw"] = {"skipped": f"build of HNSW over {n} vectors exceeds the bench time cap here"}

        nlist = max(16, min(int(4 * np.sqrt(n)), 1024))
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
        train = data[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
        ivf.train(train)
        ivf.add(data)
        ivf.nprobe = IVF_NPROBE
        build = time.perf_counter() - t
        found, lat = _timed_search(ivf, queries, 10)
        row["ivf"] = {
            "params": {"nlist": nlist, "nprobe": IVF_NPROBE, "train_points": len(train)},
            "build_s": round(build, 2),
            "latency_ms": _pct(lat),
            "recall@10": round(_recall(found, truth), 4),
            "speedup_p50_vs_flat": round(base_p50 / max(_pct(lat)["p50"], 1e-6), 1),
        }
        del ivf, quantizer, data
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--medquad-limit", type=int, default=None, help="MedQuAD pairs (default: all)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--scaling-queries", type=int, default=200)
    parser.add_argument("--hnsw-max", type=int, default=100_000)
    parser.add_argument("--skip-medquad", action="store_true")
    parser.add_argument("--no-artifact", action="store_true", help="embed every chunk (float32 baseline)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "retrieval.json")
    args = parser.parse_args()

    faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))
    result: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
            "faiss": faiss.__version__,
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not args.skip_medquad:
        result["medquad"] = medquad_part(args.medquad_limit, args.questions, not args.no_artifact)
        print(json.dumps(result["medquad"], indent=2), flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    result["scaling"] = {
        "baseline": "IndexFlatIP (exact); recall@10 of approximate indexes is measured against it",
        "queries": args.scaling_queries,
        "rows": scaling_part(sizes, args.scaling_queries, args.hnsw_max),
    }
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
