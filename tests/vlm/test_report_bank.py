"""The IU X-ray report bank: shipped data, embedding cache, nearest neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.shared_data import FIXTURE_XRAY
from vlm.base import ImageEncoder
from vlm.report_bank import ReportBank, load_reports


def test_shipped_reports_are_clean() -> None:
    reports = load_reports()
    assert len(reports) == 3826
    assert all(r.text for r in reports)
    assert not any("XXXX" in r.text for r in reports)
    assert len({r.uid for r in reports}) == len(reports)


def test_nearest_finds_the_report_itself(tiny_report_bank: ReportBank) -> None:
    bank = tiny_report_bank
    for index in (0, 17, 123):
        hits = bank.nearest(bank.embeddings[index], k=5)
        assert bank.reports[index].text.lower() in {
            f"{h.findings} {h.impression}".strip().lower() for h in hits[:1]
        }
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        texts = [f"{h.findings} {h.impression}" for h in hits]
        assert len(set(texts)) == len(texts)  # identical "normal" reports collapsed


def test_nearest_for_an_image(tiny_report_bank: ReportBank, tiny_encoder: ImageEncoder) -> None:
    from vlm.image_io import load_image

    image = load_image(FIXTURE_XRAY.read_bytes()).image
    hits = tiny_report_bank.nearest_for_image(image, tiny_encoder, k=3)
    assert len(hits) == 3 and all(-1.0 <= h.score <= 1.0 for h in hits)


def test_embeddings_are_cached(
    tiny_encoder: ImageEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = load_reports(limit=40)
    first = ReportBank.build_or_load(tiny_encoder, tmp_path, reports=reports)
    cached = list((tmp_path / "report_bank").glob("*.npy"))
    assert len(cached) == 1

    def fail(texts: object) -> np.ndarray:
        raise AssertionError("should have used the cache")

    monkeypatch.setattr(tiny_encoder, "encode_texts", fail)
    second = ReportBank.build_or_load(tiny_encoder, tmp_path, reports=reports)
    np.testing.assert_array_equal(first.embeddings, second.embeddings)


def test_dimension_mismatch_is_explained(tiny_report_bank: ReportBank) -> None:
    with pytest.raises(ValueError, match="does not match"):
        tiny_report_bank.nearest(np.ones(7, dtype=np.float32))
