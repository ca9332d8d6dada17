"""`medkg eval qa`: MIRAGE-style multiple-choice / yes-no-maybe QA evaluation."""

from __future__ import annotations

from pathlib import Path

import typer

SUITES = "medqa|pubmedqa|pubmedqa_ctx|medmcqa|mmlu_medical|medxpertqa"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the eval sub-app."""
    app.command("qa")(qa)


def qa(
    suite: list[str] = typer.Option(
        ["medqa"], "--suite", "-s", help=f"Benchmark suite (repeat for several): {SUITES}."
    ),
    mode: list[str] = typer.Option(
        ["direct"], "--mode", "-m", help="direct|cot|rag|kg_rag (repeat), or all."
    ),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="A benchmark file (one suite) or a folder holding <suite>/ folders. Default: "
        "$MEDKG_BENCHMARKS, <data dir>/benchmarks, or the shared dev copies.",
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", min=1, help="First N items of each suite."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", min=1, max=256, help="Parallel requests (default: the LLM's slots)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Results and resumable cache folder (default: <data dir>/eval/qa)."
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Token limit of answer-only modes (direct, rag, kg_rag)."
    ),
    cot_max_tokens: int | None = typer.Option(None, "--cot-max-tokens", min=1, help="Token limit of cot."),
    passages: int = typer.Option(3, "--passages", min=1, max=20, help="Retrieved passages per question."),
) -> None:
    """Accuracy ± SE per suite and mode; resumable (finished items come from <out>/cache.jsonl)."""
    from assistant.llm.base import LLMError
    from assistant.processes.supervisor import ServiceError
    from assistant.settings import load_settings
    from eval.qa.evaluate import evaluate
    from eval.qa.items import Suite
    from eval.qa.loaders import DatasetFormatError
    from eval.qa.modes import DEFAULT_MAX_TOKENS, Mode, parse_modes
    from eval.qa.report import markdown_table
    from eval.qa.runner import RunOptions

    try:
        suites = list(dict.fromkeys(Suite(s.strip().lower()) for s in suite))
    except ValueError as exc:
        typer.echo(f"error: {exc}; choose from {SUITES}", err=True)
        raise typer.Exit(2) from exc
    try:
        modes = parse_modes(mode)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = load_settings()
    tokens = dict(DEFAULT_MAX_TOKENS)
    if max_tokens is not None:
        tokens.update({m: max_tokens for m in (Mode.DIRECT, Mode.RAG, Mode.KG_RAG)})
    if cot_max_tokens is not None:
        tokens[Mode.COT] = cot_max_tokens
    options = RunOptions(
        concurrency=concurrency or settings.llm.parallel_slots, max_tokens=tokens, passages_k=passages
    )
    out_dir = out or settings.data_dir / "eval" / "qa"
    try:
        result = evaluate(
            settings,
            suites,
            modes,
            out_dir=out_dir,
            data=data,
            limit=limit,
            options=options,
            handle_signals=True,
        )
    except (FileNotFoundError, DatasetFormatError, ValueError, LLMError, ServiceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(markdown_table(result.scores))
    typer.echo(f"wrote {', '.join(str(p) for p in result.files.values())} ({result.seconds:.0f} s)")
