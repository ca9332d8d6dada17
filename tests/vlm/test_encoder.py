"""The open_clip encoder: tiny generated checkpoint loaded the production way, and no-weights paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlm.base import ImageEncoder, VisionUnavailableError
from vlm.encoder import DISABLED_MESSAGE, create_encoder, try_create_encoder
from vlm.image_io import load_image


def sample_images(folder: Path) -> list[Image.Image]:
    images = [load_image(p.read_bytes()).image for p in sorted(folder.glob("*.png"))]
    assert len(images) == 4
    return images


def test_tiny_encoder_embeds_images_and_texts(tiny_encoder: ImageEncoder, fixture_images: Path) -> None:
    assert isinstance(tiny_encoder, ImageEncoder)
    images = sample_images(fixture_images)
    image_vectors = tiny_encoder.encode_images(images)
    text_vectors = tiny_encoder.encode_texts(["pleural effusion", "no pleural effusion", "normal chest"])
    assert image_vectors.shape == (len(images), 32) and image_vectors.dtype == np.float32
    assert text_vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(image_vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text_vectors, axis=1), 1.0, atol=1e-5)
    # Different inputs give different vectors; the same input the same vector.
    assert not np.allclose(text_vectors[0], text_vectors[1])
    np.testing.assert_allclose(tiny_encoder.encode_texts(["pleural effusion"])[0], text_vectors[0], atol=1e-6)


def test_batching_does_not_change_embeddings(tiny_encoder: ImageEncoder, fixture_images: Path) -> None:
    images = sample_images(fixture_images) * 5  # 20 images: more than one batch of 16
    batched = tiny_encoder.encode_images(images)
    one_by_one = np.concatenate([tiny_encoder.encode_images([image]) for image in images[:3]])
    assert batched.shape[0] == 20
    np.testing.assert_allclose(batched[:3], one_by_one, atol=1e-5)


def test_checkpoint_file_with_config_beside_it(
    tiny_clip_checkpoint: Path, tiny_encoder: ImageEncoder, tmp_path: Path
) -> None:
    weights = tmp_path / "tiny.bin"
    shutil.copy(tiny_clip_checkpoint / "open_clip_pytorch_model.bin", weights)
    config = json.loads((tiny_clip_checkpoint / "open_clip_config.json").read_text())
    (tmp_path / "tiny.json").write_text(json.dumps(config["model_cfg"]))  # plain config, file stem name
    encoder = create_encoder(str(weights))
    texts = ["cardiomegaly", "pneumothorax"]
    np.testing.assert_allclose(encoder.encode_texts(texts), tiny_encoder.encode_texts(texts), atol=1e-5)


def test_no_model_disables_vision_with_the_reason() -> None:
    with pytest.raises(VisionUnavailableError) as excinfo:
        create_encoder(None)
    assert "image analysis disabled: set MEDKG_VISION__MODEL to hf-hub:" in str(excinfo.value)
    encoder, reason = try_create_encoder(None)
    assert encoder is None and reason == DISABLED_MESSAGE


def test_missing_and_invalid_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(VisionUnavailableError, match="not found"):
        create_encoder(str(tmp_path / "nope.pt"))
    with pytest.raises(VisionUnavailableError, match=r"open_clip_config\.json"):
        create_encoder(str(tmp_path))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(VisionUnavailableError, match=r"could not load junk\.pt"):
        create_encoder(str(junk), architecture="ViT-B-32")
    with pytest.raises(VisionUnavailableError, match="unknown open_clip architecture"):
        create_encoder(str(junk), architecture="No-Such-Arch")


def test_hub_model_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    encoder, reason = try_create_encoder("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    assert encoder is None
    assert reason.startswith("image analysis disabled: could not load hf-hub:microsoft/BiomedCLIP")
