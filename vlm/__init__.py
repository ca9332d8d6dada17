"""Perception only: image loading, the open_clip encoder, zero-shot findings, report-bank search.

No LLM and no graph here: the agent passes imaging findings in as plain data.
"""

from vlm.base import ImageEncoder, ImageError, VisionUnavailableError
from vlm.encoder import (
    BIOMEDCLIP,
    DISABLED_MESSAGE,
    OpenClipEncoder,
    create_encoder,
    create_random_encoder,
    try_create_encoder,
)
from vlm.image_io import LoadedImage, load_image
from vlm.report_bank import BankReport, ReportBank, SimilarReport, load_reports
from vlm.zero_shot import (
    FindingLabel,
    ImageFinding,
    ZeroShotClassifier,
    calibrate,
    labels_from_findings,
    standard_cxr_labels,
)

__all__ = [
    "BIOMEDCLIP",
    "DISABLED_MESSAGE",
    "BankReport",
    "FindingLabel",
    "ImageEncoder",
    "ImageError",
    "ImageFinding",
    "LoadedImage",
    "OpenClipEncoder",
    "ReportBank",
    "SimilarReport",
    "VisionUnavailableError",
    "ZeroShotClassifier",
    "calibrate",
    "create_encoder",
    "create_random_encoder",
    "labels_from_findings",
    "load_image",
    "load_reports",
    "standard_cxr_labels",
    "try_create_encoder",
]
