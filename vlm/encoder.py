"""The open_clip image/text encoder behind the ``ImageEncoder`` boundary.

Where the weights come from (``MEDKG_VISION__MODEL``):

* ``hf-hub:<org>/<repo>`` - an open_clip model on the Hugging Face Hub, e.g. BiomedCLIP
  (``hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224``). Offline it must
  already be in the Hugging Face cache.
* ``medkg-cxr`` (the default) - medkg's own small chest X-ray model, trained on the Kermany
  pediatric training split and shipped in ``vlm/models/medkg-cxr`` (see its MODEL_CARD.md);
* a local directory holding ``open_clip_config.json`` + weights (the layout of a Hub snapshot);
* a local checkpoint file (``.pt``/``.pth``/``.bin``/``.safetensors``) with either a config
  JSON beside it (``open_clip_config.json`` or ``<checkpoint stem>.json``) or a built-in
  open_clip architecture name (``architecture``, default ``ViT-B-16``).

With none of these (``None``), ``create_encoder`` raises ``VisionUnavailableError`` and the rest of the
app keeps working without image analysis (``try_create_encoder`` turns that into a reason).
open_clip and torch are imported lazily: importing ``vlm`` stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vlm.base import ImageEncoder, VisionUnavailableError

log = logging.getLogger(__name__)

BIOMEDCLIP = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
DISABLED_MESSAGE = (
    "image analysis disabled: set MEDKG_VISION__MODEL to hf-hub:... (e.g. "
    f"{BIOMEDCLIP}) or a local checkpoint path"
)
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
LOCAL_CONFIG_NAME = "open_clip_config.json"
# Models that ship inside the package, by name (``MEDKG_VISION__MODEL=medkg-cxr``, the default).
SHIPPED_MODELS_DIR = Path(__file__).parent / "models"
SHIPPED_MODELS = ("medkg-cxr",)


class OpenClipEncoder:
    """L2-normalised open_clip embeddings for images and texts, batched, without gradients."""

    def __init__(
        self,
        model: Any,
        preprocess: Callable[[Image.Image], Any],
        tokenizer: Callable[[Sequence[str]], Any],
        *,
        name: str,
        fingerprint: str = "",
        device: str = "cpu",
        batch_size: int = 16,
        source_dir: Path | None = None,
    ) -> None:
        self.model = model.eval()
        # The checkpoint directory, where model-specific heads (e.g. medkg_cxr.json) live.
        self.source_dir = source_dir
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        # Identifies the exact weights (cache keys for text embeddings of the report bank).
        self.fingerprint = fingerprint or name
        self.device = device
        self.batch_size = max(1, batch_size)

    @property
    def logit_scale(self) -> float:
        """The model's learned similarity scale (1 / CLIP temperature)."""
        torch = _import_torch()
        with torch.no_grad():
            return float(self.model.logit_scale.exp().item())

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        torch = _import_torch()
        chunks: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            batch = [
                self.preprocess(image.convert("RGB")) for image in images[start : start + self.batch_size]
            ]
            pixels = torch.stack(batch).to(self.device)
            with torch.inference_mode():
                features = self.model.encode_image(pixels, normalize=True)
            chunks.append(features.float().cpu().numpy())
        return _stack(chunks)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        torch = _import_torch()
        chunks: list[np.ndarray] = []
        # Text batches are cheap relative to images; larger batches cut per-call overhead.
        step = self.batch_size * 8
        for start in range(0, len(texts), step):
            tokens = self.tokenizer(list(texts[start : start + step])).to(self.device)
            with torch.inference_mode():
                features = self.model.encode_text(tokens, normalize=True)
            chunks.append(features.float().cpu().numpy())
        return _stack(chunks)


def _stack(chunks: list[np.ndarray]) -> np.ndarray:
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks).astype(np.float32))


# --- construction --------------------------------------------------------------------------


def create_encoder(
    model: str | None,
    *,
    architecture: str = "ViT-B-16",
    device: str = "cpu",
    batch_size: int = 16,
) -> ImageEncoder:
    """Build the encoder named by ``model`` or raise ``VisionUnavailableError`` saying why."""
    if model is None or not str(model).strip():
        raise VisionUnavailableError(DISABLED_MESSAGE)
    model = str(model).strip()
    open_clip = _import_open_clip()
    if model in SHIPPED_MODELS:
        shipped = SHIPPED_MODELS_DIR / model
        if not (shipped / LOCAL_CONFIG_NAME).is_file():
            raise VisionUnavailableError(
                f"image analysis disabled: the shipped model {model!r} is missing from {shipped} "
                "(reinstall medkg, or train it with `medkg vision train`)"
            )
        return _from_local_dir(open_clip, shipped, device=device, batch_size=batch_size)
    if model.startswith("hf-hub:"):
        return _from_hub(open_clip, model, device=device, batch_size=batch_size)
    path = Path(model).expanduser()
    if not path.exists():
        raise VisionUnavailableError(
            f"image analysis disabled: checkpoint {model!r} not found (MEDKG_VISION__MODEL must be "
            "hf-hub:<repo> or an existing local checkpoint file or directory)"
        )
    if path.is_dir():
        return _from_local_dir(open_clip, path, device=device, batch_size=batch_size)
    return _from_checkpoint_file(open_clip, path, architecture, device=device, batch_size=batch_size)


def try_create_encoder(
    model: str | None,
    *,
    architecture: str = "ViT-B-16",
    device: str = "cpu",
) -> tuple[ImageEncoder | None, str]:
    """``(encoder, "")`` when image analysis works, else ``(None, reason for the user)``."""
    try:
        return create_encoder(model, architecture=architecture, device=device), ""
    except VisionUnavailableError as exc:
        return None, str(exc)


def create_random_encoder(architecture: str = "ViT-B-16", *, device: str = "cpu") -> OpenClipEncoder:
    """An encoder with RANDOM weights: for benchmarks and tests only, never for analysis."""
    open_clip = _import_open_clip()
    model, _, preprocess = open_clip.create_model_and_transforms(architecture, pretrained=None, device=device)
    tokenizer = open_clip.get_tokenizer(architecture)
    return OpenClipEncoder(
        model, preprocess, tokenizer, name=f"{architecture} (random weights)", device=device
    )


def _from_hub(open_clip: Any, model: str, *, device: str, batch_size: int) -> OpenClipEncoder:
    try:
        clip, preprocess = open_clip.create_model_from_pretrained(model, device=device)
        tokenizer = open_clip.get_tokenizer(model)
    except Exception as exc:
        raise VisionUnavailableError(
            f"image analysis disabled: could not load {model} ({_short(exc)}). Offline, its files "
            "must already be in the Hugging Face cache (HF_HOME); or set MEDKG_VISION__MODEL to a "
            "local checkpoint directory"
        ) from exc
    return OpenClipEncoder(
        clip, preprocess, tokenizer, name=model, fingerprint=model, device=device, batch_size=batch_size
    )


def _from_local_dir(open_clip: Any, path: Path, *, device: str, batch_size: int) -> OpenClipEncoder:
    if not (path / LOCAL_CONFIG_NAME).is_file():
        raise VisionUnavailableError(
            f"image analysis disabled: {path} has no {LOCAL_CONFIG_NAME} (a checkpoint directory "
            "needs the open_clip config and weights, as in a Hugging Face snapshot)"
        )
    checkpoints = [p for p in sorted(path.iterdir()) if p.suffix in CHECKPOINT_SUFFIXES]
    if not checkpoints:
        raise VisionUnavailableError(f"image analysis disabled: no weights file in {path}")
    spec = f"local-dir:{path.resolve()}"
    try:
        clip, preprocess = open_clip.create_model_from_pretrained(spec, device=device)
        tokenizer = open_clip.get_tokenizer(spec)
    except Exception as exc:
        raise VisionUnavailableError(
            f"image analysis disabled: could not load the checkpoint in {path} ({_short(exc)})"
        ) from exc
    return OpenClipEncoder(
        clip,
        preprocess,
        tokenizer,
        name=path.name,
        fingerprint=_fingerprint(checkpoints),
        device=device,
        batch_size=batch_size,
        source_dir=path,
    )


def _from_checkpoint_file(
    open_clip: Any, path: Path, architecture: str, *, device: str, batch_size: int
) -> OpenClipEncoder:
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise VisionUnavailableError(
            f"image analysis disabled: {path.name} is not a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})"
        )
    config_path = next(
        (p for p in (path.with_suffix(".json"), path.parent / LOCAL_CONFIG_NAME) if p.is_file()), None
    )
    arch_name = _register_config(open_clip, config_path) if config_path else architecture
    if arch_name not in open_clip.list_models():
        raise VisionUnavailableError(
            f"image analysis disabled: unknown open_clip architecture {arch_name!r} for {path.name} "
            "(set MEDKG_VISION__ARCHITECTURE or put a config JSON beside the checkpoint)"
        )
    try:
        clip, _, preprocess = open_clip.create_model_and_transforms(
            arch_name, pretrained=str(path), device=device
        )
        tokenizer = open_clip.get_tokenizer(arch_name)
    except Exception as exc:
        raise VisionUnavailableError(
            f"image analysis disabled: could not load {path.name} as {arch_name} ({_short(exc)})"
        ) from exc
    return OpenClipEncoder(
        clip,
        preprocess,
        tokenizer,
        name=path.stem,
        fingerprint=_fingerprint([path]),
        device=device,
        batch_size=batch_size,
    )


def _register_config(open_clip: Any, config_path: Path) -> str:
    """Register a config JSON (plain or Hub-style ``{"model_cfg": ...}``) under a unique name."""
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VisionUnavailableError(
            f"image analysis disabled: unreadable config {config_path} ({exc})"
        ) from exc
    cfg = raw.get("model_cfg", raw) if isinstance(raw, dict) else None
    if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= cfg.keys():
        raise VisionUnavailableError(
            f"image analysis disabled: {config_path} is not an open_clip model config "
            "(needs embed_dim, vision_cfg, text_cfg)"
        )
    return _register_config_dict(open_clip, cfg)


def _register_config_dict(open_clip: Any, cfg: dict[str, Any]) -> str:
    """Register an open_clip model config under a name derived from its content."""
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    name = f"medkg-local-{digest}"
    if name not in open_clip.list_models():
        # open_clip names registered configs after their file stem.
        folder = Path(tempfile.mkdtemp(prefix="medkg-clip-config-"))
        (folder / f"{name}.json").write_text(json.dumps(cfg), encoding="utf-8")
        open_clip.add_model_config(folder / f"{name}.json")
    return name


def _fingerprint(files: Sequence[Path]) -> str:
    """Cheap identity of weight files: size, mtime and the first/last MiB (not the whole file)."""
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if stat.st_size > 2 << 20:
                handle.seek(-(1 << 20), 2)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as exc:
        raise VisionUnavailableError(
            "image analysis disabled: the 'open_clip_torch' package (with torch and torchvision) is "
            f"not installed ({exc})"
        ) from exc
    except Exception as exc:  # e.g. a torch/torchvision build mismatch ('torchvision::nms')
        raise VisionUnavailableError(
            f"image analysis disabled: open_clip failed to import ({_short(exc)}); torch and "
            "torchvision must be a matching pair (torch 2.14.1 + torchvision 0.29.1 are known good)"
        ) from exc
    return open_clip


def _import_torch() -> Any:
    import torch

    return torch


def _short(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text or type(exc).__name__)[:limit]
