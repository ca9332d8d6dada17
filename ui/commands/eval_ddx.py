"""`medkg eval ddx`: interactive-diagnosis evaluation on DDXPlus-format simulated patients."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_OUT = Path("eval/ddx/results")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the eval sub-app."""
    app.command("ddx")(ddx)


def ddx(
    patients: Path | None = typer.Option(
        None,
        "--patients",
        help="Patients in the official DDXPlus CSV format (.csv, .gz or .zip, "
        "e.g. release_test_patients.zip). Default: medkg's 490 simulated patients.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N patients."),
    policy: list[str] = typer.Option(
        ["full", "baseline", "random", "none"],
        "--policy",
        help="Policies to compare (repeat): full, baseline, graph, random, none.",
    ),
    max_questions: int | None = typer.Option(
        None,
        "--max-questions",
        min=0,
        max=50,
        help="Question cap per patient; confident cases stop earlier (default: settings, 16).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random-question policy and the bootstrap."),
    cutoff: float = typer.Option(0.01, "--cutoff", min=0.0, max=1.0, help="Probability cut-off for DDR/DDP."),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Stop when the top posterior reaches this (default: settings).",
    ),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Directory for ddx_results.json and ddx_results.md."),
) -> None:
    """Simulated patients answer each policy's questions; report GTPA@1/3/5, questions, DDR/DDP/DDF1."""
    from assistant.settings import load_settings
    from eval.ddx.evaluate import evaluate_from_settings
    from eval.ddx.generator import SHIPPED_PATIENTS
    from eval.ddx.report import comparison_table, write_report
    from kg.ddxplus.records import PatientFileError, read_patients

    patients_file = patients or SHIPPED_PATIENTS

    def progress(name: str, done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            typer.echo(f"  {done}/{total} episodes (last: {name})", err=True)

    try:
        read_patients(patients_file, limit=1)  # a bad file fails here, before any server starts
        settings = load_settings()
        # The settings' stop rule, with the options given here.
        options = {"max_questions": max_questions, "posterior_threshold": threshold}
        stop = settings.agent.stop.updated(**{k: v for k, v in options.items() if v is not None})
        run = evaluate_from_settings(
            settings,
            patients_file,
            policies=policy,
            limit=limit,
            stop=stop,
            seed=seed,
            cutoff=cutoff,
            progress=progress,
            handle_signals=True,
        )
    except (PatientFileError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    json_path, md_path = write_report(run, out)
    typer.echo(comparison_table(run))
    typer.echo(f"\nwrote {json_path} and {md_path}")
