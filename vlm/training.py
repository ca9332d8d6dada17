"""Train medkg's small open_clip chest X-ray model on CPU (``medkg vision train``).

Why this shape: no pretrained medical weights can be obtained offline, so the model is trained
from scratch on the Kermany pediatric training split. It is a genuine open_clip CLIP (a small
ModifiedResNet image tower at 128 px and a 2-layer text transformer over the standard CLIP
vocabulary), saved as a Hub-style directory (``open_clip_config.json`` + safetensors), so the
product loads it through the same factory as BiomedCLIP. With only three captionable classes a
batch-wise CLIP loss would treat same-class captions as negatives; instead each step scores
every image against one randomly phrased caption per class (CLIP-style logits, cross-entropy
over the classes) plus a normal-vs-pneumonia caption pair, which is contrastive image-text
training whose "batch of texts" is the label set. Scoring at inference uses the same captions.

Out-of-scope detection (``vlm.cxr.ScopeModel``) is fitted after training on the training
images' embeddings and its threshold set on the patient-grouped validation split.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlm.cxr_data import CLASSES, Sample, pixel_cache, scan, split_by_patient

log = logging.getLogger(__name__)

MODEL_NAME = "medkg-cxr"
# Sized for a shared 2-core CPU: 128 px grayscale and a one-block-per-stage ResNet train in
# ~29 min (10 epochs) on one busy core; the 49k-token text embedding (width 64) is most of the
# ~9 MB fp16 file. 96 px trains 2.5x faster but separates bacterial from viral worse.
IMAGE_SIZE = 128
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": IMAGE_SIZE, "layers": [1, 1, 1, 1], "width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# Varied phrasings per class; training samples one per class per step so the text tower learns
# the class, not one sentence. ``vlm.cxr`` averages all of them at inference (prompt ensemble).
CAPTIONS: dict[str, tuple[str, ...]] = {
    "normal": (
        "a normal chest x-ray.",
        "normal pediatric chest radiograph.",
        "clear lungs, no consolidation.",
        "no acute cardiopulmonary abnormality.",
        "the lungs are clear. no pneumonia.",
        "a frontal chest x-ray of a healthy child.",
        "no focal airspace opacity.",
        "normal lungs.",
    ),
    "bacterial": (
        "bacterial pneumonia.",
        "a chest x-ray showing bacterial pneumonia.",
        "lobar consolidation consistent with bacterial pneumonia.",
        "focal airspace consolidation.",
        "dense lobar opacity, bacterial infection.",
        "pediatric chest radiograph with bacterial pneumonia.",
        "focal consolidation in the lung.",
        "bacterial lung infection.",
    ),
    "viral": (
        "viral pneumonia.",
        "a chest x-ray showing viral pneumonia.",
        "diffuse interstitial opacities consistent with viral pneumonia.",
        "bilateral perihilar interstitial markings.",
        "patchy diffuse opacities, viral infection.",
        "pediatric chest radiograph with viral pneumonia.",
        "interstitial pattern in both lungs.",
        "viral lung infection.",
    ),
    "pneumonia": (
        "pneumonia.",
        "a chest x-ray showing pneumonia.",
        "airspace opacity consistent with pneumonia.",
        "pediatric chest radiograph with pneumonia.",
        "lung infection with opacities.",
        "abnormal chest x-ray with pneumonia.",
    ),
}


@dataclass
class TrainConfig:
    data: Path
    out: Path
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    val_fraction: float = 0.15
    image_size: int = IMAGE_SIZE
    threads: int = 1
    subtype_weight: float = 1.0  # weight of the bacterial-vs-viral loss on pneumonia films
    limit: int | None = None  # at most this many images (tests, smoke runs)
    cache_dir: Path | None = None
    model_cfg: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(MODEL_CFG)))


@dataclass
class TrainResult:
    out: Path
    seconds: float
    train_images: int
    val_images: int
    val_groups: list[str]
    metrics: dict[str, Any]


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(model_cfg: dict[str, Any]) -> Any:
    """An open_clip CLIP from a config dict (registered under a content-derived name)."""
    from vlm.encoder import _import_open_clip, _register_config_dict

    open_clip = _import_open_clip()
    return open_clip.create_model(_register_config_dict(open_clip, model_cfg), pretrained=None)


def augment(batch: Any, generator: Any) -> Any:
    """Radiograph-safe augmentation on a (n, 1, h, w) float batch in [0, 1].

    Small rotations (±7°), shifts (±6%), zoom (0.9-1.1), brightness/contrast/gamma. No horizontal
    flips: the heart is on the left and a flipped film is a different (dextrocardia) picture.
    """
    import torch
    import torch.nn.functional as F

    n = batch.shape[0]

    def uniform(low: float, high: float) -> Any:
        return torch.rand(n, generator=generator) * (high - low) + low

    angle = uniform(-7.0, 7.0) * math.pi / 180
    scale = uniform(0.9, 1.1)
    tx, ty = uniform(-0.06, 0.06), uniform(-0.06, 0.06)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (n, 2, 3)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, padding_mode="border", align_corners=False)
    gamma = uniform(0.8, 1.25).view(n, 1, 1, 1)
    out = out.clamp(0, 1) ** gamma
    contrast = uniform(0.8, 1.2).view(n, 1, 1, 1)
    brightness = uniform(-0.08, 0.08).view(n, 1, 1, 1)
    mean = out.mean(dim=(2, 3), keepdim=True)
    return ((out - mean) * contrast + mean + brightness).clamp(0, 1)


def to_model_input(batch01: Any, mean: float, std: float) -> Any:
    """Gray (n, 1, h, w) in [0, 1] -> normalised 3-channel input (as open_clip's preprocess)."""
    return ((batch01 - mean) / std).expand(-1, 3, -1, -1)


def class_text_features(model: Any, tokenizer: Any, captions: Sequence[str]) -> Any:
    return model.encode_text(tokenizer(list(captions)), normalize=True)


def train(config: TrainConfig) -> TrainResult:
    """Train, evaluate on the patient-grouped validation split, fit the scope model, save."""
    import torch
    import torch.nn.functional as F

    from vlm.encoder import _import_open_clip

    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    samples = scan(config.data)
    if config.limit:
        rng = random.Random(config.seed)
        samples = sorted(rng.sample(samples, min(config.limit, len(samples))), key=lambda s: str(s.path))
    train_set, val_set = split_by_patient(samples, fraction=config.val_fraction, seed=config.seed)
    if not train_set:
        raise ValueError(f"no labelled training images under {config.data} (NORMAL/, PNEUMONIA/)")
    size = config.image_size
    train_px = pixel_cache(train_set, size, config.cache_dir)
    val_px = pixel_cache(val_set, size, config.cache_dir)
    mean = float(train_px.mean() / 255.0)
    std = float(train_px.std() / 255.0)
    log.info(
        "data: %d train / %d validation images (%.1f s to load)",
        len(train_set),
        len(val_set),
        time.perf_counter() - started,
    )

    config.model_cfg["vision_cfg"]["image_size"] = size
    model = build_model(config.model_cfg)
    open_clip = _import_open_clip()
    tokenizer = open_clip.tokenize  # the standard CLIP BPE, truncated to the model's context
    context = config.model_cfg["text_cfg"]["context_length"]

    def tokenize(texts: list[str]) -> Any:
        return tokenizer(texts, context_length=context)

    labels = torch.tensor([CLASSES.index(s.label) if s.label in CLASSES else -1 for s in train_set])
    pneumonia = torch.tensor([s.pneumonia for s in train_set], dtype=torch.long)
    images = torch.from_numpy(train_px)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_set) / config.batch_size))
    total = steps_per_epoch * config.epochs
    warmup = max(1, total // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total)),
    )
    generator = torch.Generator().manual_seed(config.seed)
    caption_rng = random.Random(config.seed)
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_set), generator=generator)
        running = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            batch = augment(images[idx].unsqueeze(1).float() / 255.0, generator)
            feats = model.encode_image(to_model_input(batch, mean, std), normalize=True)
            texts = [caption_rng.choice(CAPTIONS[c]) for c in CLASSES]
            binary = [caption_rng.choice(CAPTIONS["normal"]), caption_rng.choice(CAPTIONS["pneumonia"])]
            text_feats = model.encode_text(tokenize(texts + binary), normalize=True)
            scale = model.logit_scale.exp().clamp(max=100)
            logits = scale * feats @ text_feats.T
            y = labels[idx]
            known = y >= 0
            loss = F.cross_entropy(logits[:, 3:], pneumonia[idx])
            if bool(known.any()):
                loss = loss + F.cross_entropy(logits[known, :3], y[known])
            # Bacterial vs viral is the hard task; normal films would otherwise dominate its
            # gradient, so pneumonia films also get a loss over just those two captions.
            subtype = y > 0
            if bool(subtype.any()):
                loss = loss + config.subtype_weight * F.cross_entropy(logits[subtype, 1:3], y[subtype] - 1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += float(loss.item())
        message = f"epoch {epoch + 1}/{config.epochs} loss {running / steps_per_epoch:.4f}"
        if len(val_set):
            model.eval()
            from vlm.cxr import CxrHead, auroc

            probs = CxrHead.from_model(model, tokenize, CAPTIONS).score_embeddings(
                embed_pixels(model, val_px, mean, std), logit_scale=float(model.logit_scale.exp().item())
            )
            val_labels = np.array([s.label for s in val_set])
            sub = np.isin(val_labels, ["bacterial", "viral"])
            pneumonia_auc = auroc(val_labels != "normal", probs["p_pneumonia"])
            bacterial_auc = auroc(val_labels[sub] == "bacterial", probs["p_bacterial_given_pneumonia"][sub])
            message += f" val AUROC pneumonia {pneumonia_auc:.3f} bacterial {bacterial_auc:.3f}"
        log.info("%s (%.0f s)", message, time.perf_counter() - started)

    model.eval()
    from vlm.cxr import CxrHead, evaluate_scores

    head = CxrHead.from_model(model, tokenize, CAPTIONS)
    metrics: dict[str, Any] = {}
    if len(val_set):
        val_emb = embed_pixels(model, val_px, mean, std)
        scale = float(model.logit_scale.exp().clamp(max=100).item())
        metrics = evaluate_scores(
            head.score_embeddings(val_emb, logit_scale=scale), [s.label for s in val_set]
        )
    seconds = time.perf_counter() - started
    save_model(config, model, mean, std, metrics, seconds, len(train_set), len(val_set))
    metrics["out_of_scope_rate"] = fit_heads(config.out, train_set, val_set)
    seconds = time.perf_counter() - started
    return TrainResult(
        out=config.out,
        seconds=seconds,
        train_images=len(train_set),
        val_images=len(val_set),
        val_groups=sorted({s.group for s in val_set}),
        metrics=metrics,
    )


def embed_pixels(model: Any, pixels: np.ndarray, mean: float, std: float, batch: int = 256) -> np.ndarray:
    import torch

    chunks = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch):
            x = torch.from_numpy(pixels[start : start + batch]).unsqueeze(1).float() / 255.0
            chunks.append(model.encode_image(to_model_input(x, mean, std), normalize=True).numpy())
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)


def fit_heads(model_dir: Path, train_set: Sequence[Sample], val_set: Sequence[Sample]) -> float:
    """Fit the out-of-scope detector and the bacterial-vs-viral head of a saved model directory.

    Both sit on frozen image features computed through the production path (file ->
    ``load_image`` -> the encoder's own preprocessing), so they hold for what users upload.
    Returns the share of validation images the detector refuses.
    """
    from vlm.cxr import HEADS_FILE, SCOPE_FILE, SPEC_NAME, ScopeModel, SubtypeHead, encoder_features
    from vlm.encoder import create_encoder
    from vlm.evaluation import load_images

    encoder = create_encoder(str(model_dir))
    train_images, kept = load_images([s.path for s in train_set])
    train_features = encoder_features(encoder, train_images)
    val_features = encoder_features(encoder, load_images([s.path for s in val_set])[0]) if val_set else {}
    scope = ScopeModel.fit(train_features, val_features or train_features, max_flag_rate=0.03)
    scope.save(model_dir / SCOPE_FILE)
    labels = np.array([train_set[i].label for i in kept])
    subtype = np.isin(labels, ["bacterial", "viral"])
    if subtype.any() and len(set(labels[subtype])) == 2:
        head = SubtypeHead.fit(
            {k: v[subtype] for k, v in train_features.items()}, labels[subtype] == "bacterial"
        )
        head.save(model_dir / HEADS_FILE)
    rate = float(np.mean(scope.flags(val_features))) if val_features else 0.0
    spec_path = model_dir / SPEC_NAME
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    spec["scope"] = {
        "kind": "max of rescaled Mahalanobis distances: pooled ResNet stages 1-3 and the embedding",
        "file": SCOPE_FILE,
        "threshold": scope.threshold,
        "validation_flagged": rate,
    }
    spec["subtype_head"] = {
        "kind": "L2 logistic regression (bacterial vs viral) on the embedding + pooled stages 1-3",
        "file": HEADS_FILE,
    }
    spec.setdefault("validation", {})["out_of_scope_rate"] = rate
    spec_path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return rate


def save_model(
    config: TrainConfig,
    model: Any,
    mean: float,
    std: float,
    metrics: dict[str, Any],
    seconds: float,
    n_train: int,
    n_val: int,
) -> None:
    """A Hub-style open_clip directory plus medkg's scoring head (``medkg_cxr.json``)."""
    from safetensors.torch import save_file

    from vlm.encoder import LOCAL_CONFIG_NAME

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    # fp16 on disk halves the size (the 49k-token embedding dominates); loading casts back.
    state = {
        k: v.detach().to("cpu").half().contiguous() if v.is_floating_point() else v.contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(out / "open_clip_model.safetensors"))
    open_clip_config = {
        "model_cfg": config.model_cfg,
        "preprocess_cfg": {
            "mean": [mean] * 3,
            "std": [std] * 3,
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    }
    (out / LOCAL_CONFIG_NAME).write_text(json.dumps(open_clip_config, indent=2) + "\n", encoding="utf-8")
    spec = {
        "name": MODEL_NAME,
        "classes": list(CLASSES),
        "captions": {k: list(v) for k, v in CAPTIONS.items()},
        "logit_scale": float(model.logit_scale.exp().clamp(max=100).item()),
        "training": {
            "seed": config.seed,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "subtype_weight": config.subtype_weight,
            "image_size": config.image_size,
            "val_fraction": config.val_fraction,
            "train_images": n_train,
            "val_images": n_val,
            "seconds": round(seconds, 1),
            "threads": config.threads,
        },
        "validation": metrics,
    }
    (out / "medkg_cxr.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")


def validation_samples(data: Path, *, seed: int = 0, fraction: float = 0.15) -> list[Sample]:
    """The patient-grouped validation split ``train`` holds out for these arguments."""
    return split_by_patient(scan(data), fraction=fraction, seed=seed)[1]
