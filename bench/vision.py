"""Vision benchmark: medkg-cxr accuracy, calibration, out-of-scope detection, speed, memory.

1. Accuracy on the patient-grouped validation split that ``medkg vision train`` held out of
   the Kermany TRAINING folder (the official test split is never used here): AUROC for normal
   vs pneumonia and bacterial vs viral with 95% bootstrap intervals, ECE. Images go through
   the production path (file bytes -> ``load_image`` -> the encoder's preprocessing).
   Baseline in the same run: logistic regression on 32x32 pixels fitted on the same training
   patients (how much the image model adds over raw intensity), reported as AUROC ratios.
2. Out of scope: the share of unlike images the model refuses: adult chest X-rays
   (covid_cxr, torchxrayvision_tests), other-modality DICOM (pydicom test files: CT, MR, US,
   ...), generated photo-like and noise pictures; and the share of in-scope validation images
   wrongly refused.
3. Speed and memory: seconds per image (load + preprocess + embed + score) at batch 1 and 16,
   template-only report draft latency, peak RSS of this process.

    .venv/bin/python bench/vision.py [--model medkg-cxr] [--data ../shared/data/images/kermany_cxr/train]

Writes bench/results/vision.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results" / "vision.json"
SHARED = Path(os.environ.get("MEDKG_SHARED_DATA", REPO.parent / "shared" / "data"))
KERMANY = SHARED / "images" / "kermany_cxr" / "train"


def generated_images(n: int, seed: int = 0) -> list[Any]:
    """Photo-like (smooth colour fields + shapes), noise, and gradient pictures."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:  # photo-like: coloured background, blurred shapes
            base = np.zeros((160, 200, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
            image = Image.fromarray(base)
            draw = ImageDraw.Draw(image)
            for _ in range(6):
                x, y = rng.integers(0, 180), rng.integers(0, 140)
                w, h = rng.integers(10, 90, 2)
                fill = tuple(int(c) for c in rng.integers(0, 255, 3))
                draw.ellipse((int(x), int(y), int(x + w), int(y + h)), fill=fill)
        elif kind == 1:  # noise
            image = Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8))
        else:  # gradient
            ramp = np.linspace(0, 255, 192, dtype=np.float32)
            angle = rng.uniform(0, np.pi)
            grid = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
            image = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8))
        out.append(image)
    return out


def out_of_scope_sets() -> dict[str, list[Any]]:
    from vlm.base import ImageError
    from vlm.image_io import load_image

    sets: dict[str, list[Any]] = {"generated": generated_images(30)}
    adult: list[Any] = []
    for folder in (SHARED / "images" / "covid_cxr" / "images", SHARED / "images" / "torchxrayvision_tests"):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
                    with contextlib.suppress(ImageError):
                        adult.append(load_image(path.read_bytes(), filename=path.name).image)
    sets["adult_cxr"] = adult
    dicom: list[Any] = []
    try:
        from pydicom.data import get_testdata_files

        for name in get_testdata_files("*.dcm"):
            try:
                dicom.append(load_image(Path(name).read_bytes(), filename=Path(name).name).image)
            except (ImageError, OSError, ValueError):
                continue  # not an image (RT struct, ...) or a codec we lack
    except ImportError:
        pass
    sets["other_modality_dicom"] = dicom
    return sets


def pixel_baseline(train: list[Any], val: list[Any], seed: int) -> dict[str, Any]:
    """Logistic regression on 32x32 pixels (torch LBFGS), same training patients."""
    import torch

    from vlm.cxr import evaluate_scores
    from vlm.cxr_data import pixel_cache

    def features(samples: list[Any]) -> Any:
        px = pixel_cache(samples, 32, None).reshape(len(samples), -1).astype(np.float32) / 255.0
        return torch.from_numpy(px)

    x_train, x_val = features(train), features(val)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
    torch.manual_seed(seed)

    def fit(x: Any, y: Any) -> Any:
        w = torch.zeros(x.shape[1] + 1, requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=200)

        def closure() -> Any:
            opt.zero_grad()
            logits = x @ w[:-1] + w[-1]
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 1e-2 * (w[:-1] ** 2).sum()
            )
            loss.backward()
            return loss

        opt.step(closure)
        return w.detach()

    labels = np.array([s.label for s in train])
    w_pneu = fit(x_train, torch.tensor(labels != "normal", dtype=torch.float32))
    sub = np.isin(labels, ["bacterial", "viral"])
    w_bact = fit(
        x_train[torch.from_numpy(sub)], torch.tensor(labels[sub] == "bacterial", dtype=torch.float32)
    )
    probs = {
        "p_pneumonia": torch.sigmoid(x_val @ w_pneu[:-1] + w_pneu[-1]).numpy(),
        "p_bacterial_given_pneumonia": torch.sigmoid(x_val @ w_bact[:-1] + w_bact[-1]).numpy(),
    }
    return {
        "method": "logistic regression on 32x32 pixels",
        **evaluate_scores(probs, [s.label for s in val], seed=seed),
    }


def speed(encoder: Any, paths: list[Path], rounds: int) -> dict[str, Any]:
    from vlm.cxr import cxr_scorer_for
    from vlm.image_io import load_image

    scorer = cxr_scorer_for(encoder)
    uploads = [(p.name, p.read_bytes()) for p in paths[:16]]

    def one(batch: list[tuple[str, bytes]]) -> None:
        images = [load_image(data, filename=name).image for name, data in batch]
        if scorer is not None:
            scorer.score(images)
        else:
            encoder.encode_images(images)

    one(uploads[:1])  # warm-up
    out: dict[str, Any] = {}
    for label, size in (("batch_1", 1), ("batch_16", 16)):
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for i in range(0, len(uploads), size):
                one(uploads[i : i + size])
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        out[label] = {"images": len(uploads), "seconds_per_image": round(median / len(uploads), 4)}
    out["ratio_batch16_vs_batch1_throughput"] = round(
        out["batch_1"]["seconds_per_image"] / out["batch_16"]["seconds_per_image"], 2
    )
    return out


def draft_latency(encoder: Any, path: Path, runs: int = 3) -> dict[str, Any]:
    from assistant.reports import draft_report

    data = path.read_bytes()
    cold = draft_report(data, "Cough and fever.", encoder=encoder, chat_model=None, report_bank=None)
    drafts = [
        draft_report(data, "Cough and fever.", encoder=encoder, chat_model=None, report_bank=None)
        for _ in range(runs)
    ]
    return {
        "first_draft_s": round(cold.timings.total_s, 3),
        "median_template_draft_s": round(statistics.median(d.timings.total_s for d in drafts), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--model", default="medkg-cxr")
    parser.add_argument("--data", type=Path, default=KERMANY)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from vlm import create_encoder
    from vlm.cxr import cxr_scorer_for
    from vlm.cxr_data import scan, split_by_patient
    from vlm.evaluation import evaluate_samples, out_of_scope_flags

    if not args.data.is_dir():
        raise SystemExit(f"no labelled data at {args.data} (set MEDKG_SHARED_DATA or --data)")
    load_before = os.getloadavg()
    encoder = create_encoder(args.model)
    scorer = cxr_scorer_for(encoder)
    training = scorer.spec.get("training", {}) if scorer is not None else {}
    seed = int(training.get("seed", 0))
    fraction = float(training.get("val_fraction", 0.15))
    train, val = split_by_patient(scan(args.data), fraction=fraction, seed=seed)

    started = time.perf_counter()
    model_metrics = evaluate_samples(encoder, val, seed=seed)
    eval_s = time.perf_counter() - started
    baseline = pixel_baseline(train, val, seed)
    ratios = {
        task: round(model_metrics[task]["auroc"] / baseline[task]["auroc"], 3)
        for task in ("normal_vs_pneumonia", "bacterial_vs_viral")
    }

    scope: dict[str, Any] = {"in_scope_validation_flagged": model_metrics["out_of_scope_rate"]}
    flagged_total = count_total = 0
    for name, images in out_of_scope_sets().items():
        flags = out_of_scope_flags(encoder, images) if images else None
        if flags is None:
            scope[name] = {"images": len(images), "flagged": None}
            continue
        scope[name] = {"images": len(images), "flagged": round(float(np.mean(flags)), 4)}
        flagged_total += int(flags.sum())
        count_total += len(flags)
    scope["all_out_of_scope_flagged"] = round(flagged_total / count_total, 4) if count_total else None
    scope["targets"] = "flag >= 95% of out-of-scope images, <= 5% of in-scope"

    result: dict[str, Any] = {
        "benchmark": "vision",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": [round(x, 2) for x in load_before],
        },
        "model": {
            "name": encoder.name,
            "parameters": sum(p.numel() for p in getattr(encoder, "model").parameters()),  # noqa: B009
            "training": training,
        },
        "validation_split": {
            "source": str(args.data),
            "grouping": "by patient (personNNN / IM-NNNN), hash-assigned with the training seed",
            "patients": len({s.group for s in val}),
            "images": len(val),
            "note": "held out of the Kermany TRAINING folder by medkg vision train; never trained on",
        },
        "model_metrics": model_metrics,
        "baseline_pixels_logreg": baseline,
        "ratio_auroc_model_vs_baseline": ratios,
        "out_of_scope": scope,
        "evaluation_wall_s": round(eval_s, 1),
        "speed": speed(encoder, [s.path for s in val], args.rounds),
        "report_draft_template_only": draft_latency(encoder, val[0].path),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
