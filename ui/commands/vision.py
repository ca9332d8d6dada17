"""`medkg vision train|eval`: train medkg's chest X-ray model, measure any configured model."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import typer

vision_app = typer.Typer(
    help="The image model: train medkg-cxr on labelled chest X-rays, evaluate the configured model.",
    no_args_is_help=True,
)
log = logging.getLogger(__name__)


@vision_app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", help="Folder with NORMAL/ and PNEUMONIA/ sub-folders."),
    out: Path = typer.Option(..., "--out", help="Output model directory (open_clip config + weights)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the split, initialisation and augmentation."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    batch_size: int = typer.Option(64, "--batch-size", min=2),
    image_size: int = typer.Option(128, "--image-size", min=32, help="Training/inference resolution (px)."),
    subtype_weight: float = typer.Option(
        1.0, "--subtype-weight", min=0.0, help="Weight of the extra bacterial-vs-viral loss (0: off)."
    ),
    threads: int = typer.Option(
        1,
        "--threads",
        min=1,
        help="torch CPU threads (on a shared 2-core machine 1 is ~4x faster than 2: no spin-waiting).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=2, help="Use at most N images (smoke runs)."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Where decoded pixels are cached (default: <out>/../.cache)."
    ),
) -> None:
    """Train the small open_clip model on CPU, evaluate it on a patient-grouped validation split."""
    from vlm.training import TrainConfig, train

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory", param_hint="--data")
    config = TrainConfig(
        data=data,
        out=out,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        image_size=image_size,
        subtype_weight=subtype_weight,
        threads=threads,
        limit=limit,
        cache_dir=cache_dir or out.parent / ".cache",
    )
    result = train(config)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    typer.echo(
        f"trained {result.train_images} images ({result.val_images} held out by patient) in "
        f"{result.seconds:.0f} s (load average {load:.1f}); model in {result.out}"
    )
    typer.echo(json.dumps(result.metrics, indent=2))


@vision_app.command("fit-heads")
def fit_heads_command(
    model: Path = typer.Option(..., "--model", help="A model directory written by `medkg vision train`."),
    data: Path = typer.Option(..., "--data", help="The training data folder (NORMAL/, PNEUMONIA/)."),
    seed: int = typer.Option(0, "--seed", help="The seed the model was trained with (same split)."),
    val_fraction: float = typer.Option(0.15, "--val-fraction"),
) -> None:
    """Re-fit the out-of-scope detector and the bacterial-vs-viral head (the end of `train`)."""
    from vlm.cxr_data import scan, split_by_patient
    from vlm.training import fit_heads

    train_set, val_set = split_by_patient(scan(data), fraction=val_fraction, seed=seed)
    rate = fit_heads(model, train_set, val_set)
    typer.echo(f"heads written to {model}; validation images refused as out of scope: {rate:.1%}")


@vision_app.command("eval")
def eval_command(
    data: Path = typer.Option(
        ..., "--data", help="Folder with one sub-folder per label (NORMAL/, PNEUMONIA/)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the results as JSON here."),
    model: str | None = typer.Option(
        None, "--model", help="Encoder to measure (default: the configured MEDKG_VISION__MODEL)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for the bootstrap intervals."),
) -> None:
    """Score every image with the configured model: AUROC per task (95% bootstrap CI), ECE, scope."""
    from assistant.settings import load_settings
    from vlm import try_create_encoder
    from vlm.evaluation import evaluate_folder

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a directory", param_hint="--data")
    settings = load_settings()
    encoder, reason = try_create_encoder(
        model or settings.vision.model, architecture=settings.vision.architecture
    )
    if encoder is None:
        typer.echo(reason, err=True)
        raise typer.Exit(2)
    try:
        result = evaluate_folder(encoder, data, seed=seed)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    for task in ("normal_vs_pneumonia", "bacterial_vs_viral"):
        r = result[task]
        low, high = r["ci95"]
        typer.echo(f"{task}: AUROC {r['auroc']:.3f} (95% CI {low:.3f}-{high:.3f}), ECE {r['ece']:.3f}")
    oos = result["out_of_scope_rate"]
    typer.echo(
        f"{result['images']} images scored with {result['model']}; out of scope: "
        + ("n/a (no scope model)" if oos is None else f"{oos:.1%}")
        + f"; {result['seconds_per_image'] * 1000:.0f} ms/image"
    )
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.add_typer(vision_app, name="vision")
