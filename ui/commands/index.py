"""`medkg index build|search|info`: the evidence retrieval index (MedQuAD + graph descriptions)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import typer

from assistant.settings import Settings, load_settings

index_app = typer.Typer(
    help="Evidence retrieval index: build it (once, cached in the data dir) and search it.",
    no_args_is_help=True,
)
log = logging.getLogger(__name__)


class _Progress:
    """One line of progress on stderr, rewritten in place, at most ~4 times a second."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.25:
            return
        self._last = now
        self.line(stage, done, total, self._started)

    @staticmethod
    def line(stage: str, done: int, total: int, started: float) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if stage == "embed" and elapsed > 0 else 0.0
        eta = f", ~{(total - done) / rate:.0f} s left" if rate and done < total else ""
        sys.stderr.write(f"\r{stage}: {done}/{total} ({elapsed:.0f} s{eta})   ")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _SnapshotLine:
    """An IndexProgress snapshot as one stderr line, rewritten in place, ~4 times a second."""

    def __init__(self) -> None:
        self._last = 0.0

    def __call__(self, snapshot: Any) -> None:
        now = time.monotonic()
        final = snapshot.stage in ("ready", "failed")
        if not final and snapshot.stage == "embed" and now - self._last < 0.25:
            return
        self._last = now
        sys.stderr.write(f"\r{snapshot.line()}   " + ("\n" if final else ""))
        sys.stderr.flush()


def open_index(
    settings: Settings,
    *,
    limit: int | None = None,
    force: bool = False,
    benchmark_dir: Path | None = None,
    progress: bool = True,
) -> Any:
    """The app's retriever: built (with progress) or loaded from ``settings.index_dir``."""
    from assistant.indexing import open_app_index

    return open_app_index(
        settings,
        limit=limit,
        force=force,
        benchmark_dir=benchmark_dir,
        on_progress=_SnapshotLine() if progress else None,
    )


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@index_app.command("build")
def build_command(
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Index an evenly spread subset of this many MedQuAD pairs."
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even when the index on disk matches."),
    benchmarks: Path | None = typer.Option(
        None,
        "--benchmarks",
        help="Benchmark files folder: leave out documents that copy their text (fingerprint screen).",
    ),
) -> None:
    """Build the index once (cached in the data dir; rebuilt only when corpus or model change)."""
    from retrieval import EvaluationMaterialError
    from retrieval.embedding import EmbeddingModelError

    settings = load_settings()
    started = time.perf_counter()
    try:
        retriever = open_index(settings, limit=limit, force=force, benchmark_dir=benchmarks)
    except (EvaluationMaterialError, EmbeddingModelError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    m = retriever.manifest
    typer.echo(
        f"index ready in {settings.index_dir} ({time.perf_counter() - started:.1f} s): "
        f"{m.n_chunks} chunks from {m.n_documents} documents {m.sources}, "
        f"{m.index_kind} FAISS index, model {m.model} (d={m.dimension}), built {m.created_at}"
    )
    if m.excluded:
        typer.echo(f"left out by the evaluation-material guard: {len(m.excluded)} documents")


@index_app.command("build-artifact")
def build_artifact_command(
    out: Path | None = typer.Option(None, "--out", help="Artifact file (default: the shipped one)."),
    cache: Path | None = typer.Option(
        None, "--cache", help="Float32 vector cache: an interrupted build resumes from it."
    ),
    reuse_shipped: bool = typer.Option(
        False, "--reuse-shipped", help="Take vectors of unchanged chunks from the current artifact."
    ),
) -> None:
    """Maintainers: embed every chunk of the shipped corpus into retrieval/data (deterministic).

    Run after changing the MedQuAD file, the graph descriptions, the chunking or the model;
    the tests fail until the artifact matches the corpus again.
    """
    from assistant.indexing import graph_documents
    from retrieval.artifact import ARTIFACT_FILE
    from retrieval.artifact_build import build_artifact
    from retrieval.builder import collect_documents

    settings = load_settings()
    target = out or ARTIFACT_FILE
    started = time.monotonic()
    docs, _ = collect_documents(extra_documents=graph_documents())

    def show(done: int, total: int) -> None:
        _Progress.line("embed", done, total, started)

    header = build_artifact(
        docs,
        out=target,
        model=settings.retrieval.embedding_model,
        cache=cache,
        reuse_shipped=reuse_shipped,
        progress=show,
    )
    typer.echo(
        f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB): {header.n_vectors} vectors for "
        f"{header.n_chunks} chunks, corpus hash {header.corpus_hash[:16]}…, "
        f"{time.monotonic() - started:.0f} s"
    )


@index_app.command("search")
def search_command(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "-k", "--top-k", min=1, max=100, help="How many passages."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, dense or bm25."),
    source: str | None = typer.Option(None, "--source", help="Only passages of this source."),
    as_json: bool = typer.Option(False, "--json", help="Print the passages as JSON."),
) -> None:
    """Search the index built by `medkg index build` (whatever subset it holds)."""
    from retrieval import load_index
    from retrieval.hybrid import MODES

    if mode not in MODES:
        _fail(f"--mode must be one of {', '.join(MODES)}")
    settings = load_settings()
    try:
        retriever = load_index(settings.index_dir, model=settings.retrieval.embedding_model)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
        return
    filters = {"source": source} if source else None
    passages = retriever.search(query, k, filters, mode=mode)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps([p.model_dump() for p in passages], indent=2, ensure_ascii=False))
        return
    if not passages:
        typer.echo("no passages (empty or meaningless query, or nothing matches the filters)")
        return
    for rank, p in enumerate(passages, start=1):
        text = p.text if len(p.text) <= 300 else p.text[:297] + "..."
        typer.echo(f"{rank}. [{p.score:.4f}] {p.title} ({p.source}; {p.url or p.id})\n   {text}")


@index_app.command("info")
def info_command() -> None:
    """Show the manifest of the index on disk (without building anything)."""
    from retrieval.manifest import IndexManifest

    settings = load_settings()
    manifest = IndexManifest.load(settings.index_dir)
    if manifest is None:
        _fail(f"no index in {settings.index_dir} (run: medkg index build)")
        return
    typer.echo(manifest.model_dump_json(indent=2))


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.add_typer(index_app, name="index")
