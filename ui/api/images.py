"""Cheap, early check that an upload is an image format medkg reads (before any model runs)."""

from __future__ import annotations

SUPPORTED = "PNG, JPEG or DICOM"


def sniff_image_kind(data: bytes) -> str | None:
    """'png', 'jpeg', 'dicom', or None when the bytes are none of those."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    return None
