"""Image loading: every supported format, DICOM display handling, limits and bad input."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests.fixtures.shared_data import optional_shared
from vlm.base import ImageError
from vlm.image_io import load_image


def dicom_bytes(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path, f"pydicom-data lacks {name}"
    return Path(str(path)).read_bytes()


def read_dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(dicom_bytes(name)))


def dataset_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def gray(loaded_image: Image.Image) -> np.ndarray:
    array = np.asarray(loaded_image)
    assert array.ndim == 3 and array.shape[2] == 3
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()
    return array[..., 0].astype(np.int32)


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG that claims a huge size but carries almost no data (a bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


# --- formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("cxr_gray.png", "L"),  # 8-bit grayscale PNG
        ("cxr_rgb.png", "RGB"),  # RGB PNG
        ("cxr_alpha.png", "LA"),  # grayscale + alpha PNG
        ("cxr_gray16.png", "I;16"),  # 16-bit grayscale PNG
        ("cxr.jpg", "L"),  # JPEG
    ],
)
def test_png_and_jpeg_samples_load_as_rgb(fixture_images: Path, name: str, mode: str) -> None:
    data = (fixture_images / name).read_bytes()
    loaded = load_image(data, filename=name)
    reference = Image.open(io.BytesIO(data))
    assert reference.mode == mode  # the fixture is the kind of file it stands for
    assert loaded.format == reference.format
    assert loaded.original_size == reference.size
    assert loaded.image.mode == "RGB" and loaded.image.size == reference.size
    assert loaded.modality is None and loaded.metadata == {}
    assert np.asarray(loaded.image).std() > 5  # real content, not a blank canvas


def test_every_covid_sample_loads() -> None:
    files = sorted(optional_shared("images/covid_cxr/images").iterdir())
    assert files
    for path in files:
        loaded = load_image(path.read_bytes(), filename=path.name)
        assert loaded.format in {"PNG", "JPEG"} and loaded.image.mode == "RGB"


def test_sixteen_bit_png_is_rescaled_not_clipped() -> None:
    ramp = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    loaded = gray(load_image(buffer.getvalue()).image)
    assert loaded.min() == 0 and loaded.max() == 255
    assert len(np.unique(loaded)) > 200  # the full range survives, not a saturated image


def test_ct_dicom_applies_modality_lut_and_keeps_no_phi(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    loaded = load_image(dicom_bytes("CT_small.dcm"))
    assert loaded.format == "DICOM" and loaded.modality == "CT"
    assert loaded.original_size == (128, 128) and loaded.image.size == (128, 128)
    assert loaded.transfer_syntax == "Explicit VR Little Endian"
    pixels = gray(loaded.image)
    assert pixels.min() == 0 and pixels.max() == 255
    # De-identified: only technical tags leave the loader, and nothing identifying is logged.
    assert not {"PatientName", "PatientID", "PatientBirthDate", "StudyDate"} & set(loaded.metadata)
    rendered = repr(loaded) + caplog.text
    assert "CompressedSamples" not in rendered and "1CT1" not in rendered


def test_window_center_width_is_applied() -> None:
    ds = read_dataset("CT_small.dcm")
    wide = gray(load_image(dataset_bytes(ds)).image)
    ds.WindowCenter, ds.WindowWidth = 40, 80  # a narrow soft-tissue window
    narrow = gray(load_image(dataset_bytes(ds)).image)
    saturated_wide = np.mean((wide == 0) | (wide == 255))
    saturated_narrow = np.mean((narrow == 0) | (narrow == 255))
    assert saturated_narrow > saturated_wide + 0.2


def test_monochrome1_is_inverted() -> None:
    ds = read_dataset("CT_small.dcm")
    normal = gray(load_image(dataset_bytes(ds)).image)
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted = gray(load_image(dataset_bytes(ds)).image)
    assert np.array_equal(normal + inverted, np.full_like(normal, 255))


def test_real_monochrome1_radiograph_loads() -> None:
    loaded = load_image(dicom_bytes("RG3_UNCR.dcm"))
    assert loaded.metadata["PhotometricInterpretation"] == "MONOCHROME1"
    assert loaded.modality == "CR" and loaded.original_size == (1760, 1760)
    assert gray(loaded.image).std() > 10


def test_multi_frame_uses_the_middle_frame() -> None:
    loaded = load_image(dicom_bytes("emri_small.dcm"))
    assert loaded.frames == 10 and loaded.frame_index == 5
    frames = read_dataset("emri_small.dcm").pixel_array.astype(np.float64)
    pixels = gray(loaded.image).ravel().astype(np.float64)
    corr_middle = np.corrcoef(pixels, frames[5].ravel())[0, 1]
    corr_first = np.corrcoef(pixels, frames[0].ravel())[0, 1]
    assert corr_middle > 0.99 and corr_middle > corr_first


@pytest.mark.parametrize(
    ("compressed", "plain"), [("MR_small_RLE.dcm", "MR_small.dcm"), ("emri_small_RLE.dcm", "emri_small.dcm")]
)
def test_rle_compressed_dicom_matches_uncompressed(compressed: str, plain: str) -> None:
    a = load_image(dicom_bytes(compressed))
    b = load_image(dicom_bytes(plain))
    assert a.transfer_syntax == "RLE Lossless"
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_rle.dcm", "JPEG2000.dcm"])
def test_pillow_and_rle_decodable_syntaxes(name: str) -> None:
    loaded = load_image(dicom_bytes(name))
    assert loaded.image.mode == "RGB" and np.asarray(loaded.image).std() > 5


def test_unsupported_transfer_syntax_is_named() -> None:
    with pytest.raises(ImageError, match="JPEG-LS"):
        load_image(dicom_bytes("MR_small_jpeg_ls_lossless.dcm"))


# --- limits and bad input ------------------------------------------------------------------


def test_byte_limit() -> None:
    with pytest.raises(ImageError, match="limit is 1,000 bytes"):
        load_image(dicom_bytes("CT_small.dcm"), max_bytes=1000)


def test_pixel_limit_is_checked_before_decoding() -> None:
    bomb = png_header_only(100_000, 100_000)  # 10 gigapixels in 100 bytes
    assert len(bomb) < 200
    with pytest.raises(ImageError, match="the limit is 50,000,000"):
        load_image(bomb)
    # Below PIL's own guard, our limit still applies from the header alone.
    with pytest.raises(ImageError, match="25,000,000 pixels; the limit is 1,000,000"):
        load_image(png_header_only(5000, 5000), max_pixels=1_000_000)


def test_dicom_pixel_limit_counts_frames() -> None:
    with pytest.raises(ImageError, match="40,960 pixels"):  # 64 x 64 x 10 frames
        load_image(dicom_bytes("emri_small.dcm"), max_pixels=40_000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is text", "expected a PNG, JPEG or DICOM"),
        (b"%PDF-1.7\n" + b"0" * 400, "expected a PNG, JPEG or DICOM"),
        (b"GIF89a" + b"\0" * 100, "expected a PNG, JPEG or DICOM"),
        (b"\xff\xd8\xff\xe0" + b"garbage" * 20, "JPEG file is corrupt"),
    ],
)
def test_non_images_and_garbage_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(data)


def test_truncated_png_and_jpeg(fixture_images: Path) -> None:
    for name in ("cxr_gray.png", "cxr.jpg"):
        data = (fixture_images / name).read_bytes()
        with pytest.raises(ImageError, match="corrupt or truncated"):
            load_image(data[: len(data) // 2])


def test_truncated_dicom() -> None:
    data = dicom_bytes("CT_small.dcm")
    with pytest.raises(ImageError):
        load_image(data[: len(data) - 5000])


def test_dicom_without_pixel_data() -> None:
    ds = read_dataset("CT_small.dcm")
    del ds.PixelData
    with pytest.raises(ImageError, match="no pixel data"):
        load_image(dataset_bytes(ds))


def test_garbage_named_dcm_is_rejected() -> None:
    with pytest.raises(ImageError, match="DICOM"):
        load_image(b"\x00\x01not dicom at all" * 10, filename="scan.dcm")
