"""The ``ImageEncoder`` boundary (perception only: no LLM in this package)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


class ImageError(ValueError):
    """The upload is not an image we can read, or breaks a size/pixel limit."""


class VisionUnavailableError(RuntimeError):
    """No encoder weights are available; image analysis is disabled (message says why)."""


@runtime_checkable
class ImageEncoder(Protocol):
    name: str

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings, shape (n, d)."""

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings, shape (n, d)."""
