"""Cheap, early checks of an upload (before any model runs): is it an image format medkg reads,
and how many bytes would its pixels take once decoded (from the header alone)."""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Protocol

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


# --- decoded size, read from the header before any pixel is decoded -------------------------------


class ImageTooLargeError(ValueError):
    """The upload, or the pixels it would decode to, exceeds a configured limit (an HTTP 413)."""


@dataclass(frozen=True)
class DecodedSize:
    width: int
    height: int
    channels: int
    bytes_per_sample: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames

    @property
    def bytes(self) -> int:
        return self.width * self.height * self.channels * self.bytes_per_sample * self.frames


class VisionLimits(Protocol):
    max_upload_bytes: int
    max_pixels: int
    max_decoded_bytes: int


def check_decoded_size(data: bytes, limits: VisionLimits) -> DecodedSize | None:
    """Refuse an upload whose decoded pixels would exceed the limits (settings.vision), judged
    from its header alone: a 143 KB PNG can claim 7000 x 7000 pixels and decode to 150 MB.
    None when the header cannot be read (the image loader then says what is wrong)."""
    if len(data) > limits.max_upload_bytes:
        raise ImageTooLargeError(
            f"The image is {len(data):,} bytes; the limit is {limits.max_upload_bytes:,} bytes."
        )
    size = decoded_size(data)
    if size is None:
        return None
    shape = (
        f"{size.width} x {size.height} pixels, {size.channels} channel(s) of {size.bytes_per_sample} "
        f"byte(s), {size.frames} frame(s)"
    )
    if size.pixels > limits.max_pixels:
        raise ImageTooLargeError(
            f"The image has {size.pixels:,} pixels ({shape}); the limit is {limits.max_pixels:,}."
        )
    if size.bytes > limits.max_decoded_bytes:
        raise ImageTooLargeError(
            f"The image would take {size.bytes:,} bytes once decoded ({shape}); the limit is "
            f"{limits.max_decoded_bytes:,} bytes."
        )
    return size


def decoded_size(data: bytes) -> DecodedSize | None:
    kind = sniff_image_kind(data)
    if kind == "png":
        return _png_size(data)
    if kind == "jpeg":
        return _jpeg_size(data)
    if kind == "dicom":
        return _dicom_size(data)
    return None


_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # palette (3) decodes to RGB


def _png_size(data: bytes) -> DecodedSize | None:
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    frames, pos = 1, 8
    # An animated PNG declares its frame count (acTL) before the first image data chunk.
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"acTL" and pos + 12 <= len(data):
            frames = max(1, struct.unpack(">I", data[pos + 8 : pos + 12])[0])
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return DecodedSize(width, height, _PNG_CHANNELS.get(color, 4), max(1, depth // 8), frames)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> DecodedSize | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _SOF and pos + 10 <= len(data):
            precision, height, width, components = struct.unpack(">BHHB", data[pos + 4 : pos + 10])
            return DecodedSize(width, height, components, 2 if precision > 8 else 1)
        if marker == 0xDA:  # start of scan before any frame header: not a JPEG we can size
            return None
        pos += 2 + length
    return None


def _dicom_size(data: bytes) -> DecodedSize | None:
    try:
        import pydicom

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warnings can quote PHI
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        rows, columns = int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 8) or 8)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except Exception:  # malformed header: the loader gives the precise error
        return None
    if rows <= 0 or columns <= 0:
        return None
    return DecodedSize(columns, rows, samples, max(1, (bits + 7) // 8), max(1, frames))
