"""Reading uploads (PNG, JPEG, DICOM) into an 8-bit RGB PIL image, safely.

Every limit is checked before pixels are decoded: the byte size first, then the pixel count
read from the header (PNG/JPEG header, DICOM Rows x Columns x frames). Anything we cannot read
becomes an ``ImageError`` whose message says what is wrong with the file, never a crash.

DICOM headers carry protected health information (names, IDs, dates). Only a fixed allow-list
of technical attributes is ever copied out of a dataset (``DICOM_METADATA_TAGS``); nothing from
the dataset is logged.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vlm.base import ImageError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DICOM_MAGIC_OFFSET = 128
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")

# Technical, non-identifying DICOM attributes that may leave this module. Everything else
# (PatientName, PatientID, PatientBirthDate, dates, institution, UIDs...) never does.
DICOM_METADATA_TAGS = (
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsStored",
    "SamplesPerPixel",
)


@dataclass(frozen=True)
class LoadedImage:
    """An upload decoded to RGB, with de-identified metadata only."""

    image: Image.Image  # 8-bit RGB
    format: str  # "PNG" | "JPEG" | "DICOM"
    original_size: tuple[int, int]  # (width, height) as stored
    frames: int = 1
    frame_index: int = 0  # which frame was chosen (multi-frame: the middle one)
    modality: str | None = None  # DICOM Modality (e.g. "CR", "CT"), else None
    transfer_syntax: str | None = None  # DICOM only, e.g. "RLE Lossless"
    metadata: dict[str, Any] = field(default_factory=dict)  # allow-listed technical tags


def load_image(
    data: bytes,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Decode PNG, JPEG or DICOM bytes to an RGB image, enforcing size and pixel limits."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageError(f"expected image bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageError("the file is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the file is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    kind = sniff_format(data, filename)
    if kind == "DICOM":
        return _load_dicom(data, max_pixels=max_pixels)
    return _load_raster(data, kind, max_pixels=max_pixels)


def sniff_format(data: bytes, filename: str | None = None) -> str:
    """Which supported format the bytes are, judged by their magic numbers (not the name)."""
    if data.startswith(PNG_MAGIC):
        return "PNG"
    if data.startswith(JPEG_MAGIC):
        return "JPEG"
    if data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM":
        return "DICOM"
    # Some DICOM files lack the 128-byte preamble; only trust that when the name says DICOM.
    if filename and filename.lower().endswith(DICOM_SUFFIXES):
        return "DICOM"
    raise ImageError("not a supported image: expected a PNG, JPEG or DICOM file")


# --- PNG / JPEG ----------------------------------------------------------------------------


def _load_raster(data: bytes, kind: str, *, max_pixels: int) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            # We enforce our own (lower) pixel limit below; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data), formats=[kind])
            width, height = image.size
            _check_pixels(width * height, max_pixels)
            image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        # PIL's own bomb guard fires while reading the header, before ours can.
        raise ImageError(
            f"the {kind} image header claims more pixels than allowed; the limit is {max_pixels:,}"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"the {kind} file is corrupt or truncated ({_short(exc)})") from exc
    frames = int(getattr(image, "n_frames", 1) or 1)
    if kind == "JPEG":
        try:  # phone photos of films carry a rotation; a malformed EXIF block is not fatal
            image = ImageOps.exif_transpose(image) or image
        except Exception:
            log.debug("ignoring unreadable EXIF orientation")
    rgb = _to_rgb(image)
    return LoadedImage(image=rgb, format=kind, original_size=(width, height), frames=frames)


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB; 16-bit and float grayscale are rescaled over their range, not clipped."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image, dtype=np.float64)
        return Image.fromarray(_scale_to_uint8(array), mode="L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent regions become black, the usual background of radiographs.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


# --- DICOM ---------------------------------------------------------------------------------


def _load_dicom(data: bytes, *, max_pixels: int) -> LoadedImage:
    pydicom = _import_pydicom()
    try:
        with warnings.catch_warnings():
            # pydicom warnings can quote element values (names, IDs): never let them reach logs.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=data[128:132] != b"DICM")
    except Exception as exc:  # pydicom raises many types for malformed headers
        raise ImageError(f"the DICOM file is corrupt or not DICOM ({_short(exc)})") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageError("the DICOM file holds no image (no pixel data element)")

    rows, columns = _int_attr(ds, "Rows"), _int_attr(ds, "Columns")
    frames = max(_int_attr(ds, "NumberOfFrames", default=1), 1)
    if rows <= 0 or columns <= 0:
        raise ImageError("the DICOM file has no valid Rows/Columns")
    _check_pixels(rows * columns * frames, max_pixels)

    transfer_syntax = _transfer_syntax(ds)
    _require_decoder(transfer_syntax)
    index = frames // 2  # the middle frame represents a cine/volume better than the first
    try:
        from pydicom.pixels import pixel_array

        # Decode only the chosen frame; YBR colour is converted to RGB by pydicom.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = pixel_array(ds, index=index if frames > 1 else None)
    except Exception as exc:
        raise ImageError(
            f"could not decode the DICOM pixel data ({transfer_syntax.name}): {_short(exc)}"
        ) from exc

    samples = _int_attr(ds, "SamplesPerPixel", default=1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if samples == 1:
        image = Image.fromarray(_grayscale_to_uint8(array, ds, photometric, index), mode="L")
    else:
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ImageError(f"unsupported DICOM pixel layout {array.shape} for {photometric}")
        rgb = array if array.dtype == np.uint8 else _scale_to_uint8(array.astype(np.float64))
        image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")

    modality = str(ds.get("Modality", "")).strip() or None
    return LoadedImage(
        image=image.convert("RGB"),
        format="DICOM",
        original_size=(columns, rows),
        frames=frames,
        frame_index=index if frames > 1 else 0,
        modality=modality,
        transfer_syntax=transfer_syntax.name,
        metadata=_safe_metadata(ds),
    )


def _grayscale_to_uint8(array: np.ndarray, ds: Any, photometric: str, index: int) -> np.ndarray:
    """Modality LUT (rescale to e.g. Hounsfield units), then VOI LUT or window, then 8-bit."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    if array.ndim != 2:
        raise ImageError(f"unsupported DICOM pixel layout {array.shape} for {photometric}")
    try:
        values = np.asarray(apply_modality_lut(array, ds), dtype=np.float64)
    except Exception:
        values = array.astype(np.float64)  # a malformed LUT: fall back to stored values
    window = _window(ds, index)
    if "VOILUTSequence" in ds:
        try:
            values = np.asarray(apply_voi_lut(values, ds, index=0, prefer_lut=True), dtype=np.float64)
            window = None  # the LUT already mapped values to display range
        except Exception:
            pass
    if window is not None:
        center, width = window
        low, high = center - width / 2.0, center + width / 2.0
        scaled = np.clip((values - low) / max(high - low, 1e-6), 0.0, 1.0)
        out = np.round(scaled * 255.0).astype(np.uint8)
    else:
        out = _scale_to_uint8(values)
    if photometric == "MONOCHROME1":  # low values are white: invert for display
        out = 255 - out
    return out


def _window(ds: Any, index: int) -> tuple[float, float] | None:
    """Window center/width from the dataset or (enhanced multi-frame) its functional groups."""
    sources = [ds]
    for group_name, pick in (
        ("PerFrameFunctionalGroupsSequence", index),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(group_name)
        if groups and len(groups) > pick:
            voi = groups[pick].get("FrameVOILUTSequence")
            if voi:
                sources.append(voi[0])
    for source in sources:
        center, width = source.get("WindowCenter"), source.get("WindowWidth")
        if center is None or width is None:
            continue
        try:
            c = float(center[0] if _is_multi(center) else center)
            w = float(width[0] if _is_multi(width) else width)
        except (TypeError, ValueError, IndexError):
            continue
        if w > 1:
            return c, w
    return None


def _is_multi(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "MultiValue"


def _transfer_syntax(ds: Any) -> Any:
    from pydicom.uid import UID, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(str(uid)) if uid else ImplicitVRLittleEndian


def _require_decoder(transfer_syntax: Any) -> None:
    """Clear error when the pixel data is compressed with a codec no installed plugin decodes."""
    if not transfer_syntax.is_compressed:
        return
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError as exc:
        raise ImageError(
            f"DICOM transfer syntax {transfer_syntax.name!r} ({transfer_syntax}) is not supported"
        ) from exc
    if not decoder.is_available:
        raise ImageError(
            f"DICOM transfer syntax {transfer_syntax.name!r} ({transfer_syntax}) needs a decoder "
            "that is not installed (pylibjpeg or GDCM); re-export the image uncompressed, as "
            "RLE, or as baseline JPEG / JPEG 2000"
        )


def _safe_metadata(ds: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for keyword in DICOM_METADATA_TAGS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        meta[keyword] = int(value) if isinstance(value, int) else str(value).strip()
    return meta


def _int_attr(ds: Any, keyword: str, default: int = 0) -> int:
    value = ds.get(keyword, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _import_pydicom() -> Any:
    try:
        import pydicom
    except ImportError as exc:  # pragma: no cover - pydicom is a declared dependency
        raise ImageError("DICOM support needs the 'pydicom' package") from exc
    return pydicom


# --- shared helpers ------------------------------------------------------------------------


def _check_pixels(pixels: int, max_pixels: int) -> None:
    if pixels > max_pixels:
        raise ImageError(f"the image has {pixels:,} pixels; the limit is {max_pixels:,}")


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Linear min-max rescale to 0..255 (a constant image becomes black)."""
    finite = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(finite.shape, dtype=np.uint8)
    return np.round((finite - low) / (high - low) * 255.0).astype(np.uint8)


def _short(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text or type(exc).__name__)[:limit]
