"""The shipped medkg-cxr model: loads by name, separates the classes, refuses unlike images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assistant.settings import Settings
from tests.fixtures.shared_data import FIXTURE_XRAY
from tests.fixtures.vlm import photo_like_png
from vlm.base import ImageEncoder
from vlm.cxr import CxrScorer, auroc, cxr_scorer_for


def _image(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _scorer(encoder: ImageEncoder) -> CxrScorer:
    scorer = cxr_scorer_for(encoder)
    assert scorer is not None, "medkg-cxr ships its scoring head (medkg_cxr.json)"
    return scorer


def test_default_settings_select_the_shipped_model() -> None:
    from vlm import try_create_encoder

    settings = Settings()
    assert settings.vision.model == "medkg-cxr"
    encoder, reason = try_create_encoder(settings.vision.model)
    assert encoder is not None, reason
    assert encoder.name == "medkg-cxr"


def test_shipped_model_is_small_and_described() -> None:
    from vlm.encoder import SHIPPED_MODELS_DIR

    folder = SHIPPED_MODELS_DIR / "medkg-cxr"
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size < 25 * 2**20
    card = (folder / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in card and "out of scope" in card.lower()


def test_separates_normal_from_pneumonia_on_fixture_images(
    cxr_encoder: ImageEncoder, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    scorer = _scorer(cxr_encoder)
    features = scorer.features([_image(p) for p, _ in kermany_fixtures])
    # The detector refuses ~3% of real pediatric films by design (its validation threshold).
    assert sum(s.in_scope for s in scorer.score_features(features)) >= len(kermany_fixtures) - 1
    labels = np.array([label != "normal" for _, label in kermany_fixtures])
    p = scorer.raw_probabilities(features)["p_pneumonia"]
    assert auroc(labels, p) >= 0.9
    assert p[labels].mean() > 0.5 > p[~labels].mean()


@pytest.mark.parametrize("kind", ["photo", "noise", "drawing"])
def test_unlike_images_are_out_of_scope(cxr_encoder: ImageEncoder, kind: str) -> None:
    if kind == "photo":
        image = Image.open(io.BytesIO(photo_like_png(seed=4))).convert("RGB")
    elif kind == "noise":
        image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128), dtype=np.uint8))
    else:  # the generated ellipse "radiograph" of the loader tests: not a real film
        image = _image(FIXTURE_XRAY)
    score = _scorer(cxr_encoder).score([image])[0]
    assert not score.in_scope and score.p_pneumonia is None


def test_other_modality_dicom_is_out_of_scope(cxr_encoder: ImageEncoder) -> None:
    pydicom_data = pytest.importorskip("pydicom.data")
    from vlm.image_io import load_image

    path = Path(pydicom_data.get_testdata_file("CT_small.dcm"))
    image = load_image(path.read_bytes(), filename=path.name).image
    assert not _scorer(cxr_encoder).score([image])[0].in_scope


def test_analyzer_maps_pneumonia_and_refuses_a_photo(kermany_fixtures: list[tuple[Path, str]]) -> None:
    from assistant.imaging import CxrImageAnalyzer, load_image_analyzer
    from kg.models import FindingConcept
    from vlm.cxr import OutOfScopeImageError

    analyzer, reason = load_image_analyzer(Settings())
    assert isinstance(analyzer, CxrImageAnalyzer), reason
    graph = [FindingConcept(id="img_pneumonia", name="Pneumonia", kind="imaging")]
    pneumonia = next(p for p, label in kermany_fixtures if label == "bacterial")
    found = analyzer.analyze(pneumonia.read_bytes(), graph)
    by_label = {f.label: f for f in found}
    assert by_label["pneumonia"].finding_id == "img_pneumonia"  # the graph's id
    assert by_label["pneumonia"].probability >= 0.5
    with pytest.raises(OutOfScopeImageError, match="not scored"):
        analyzer.analyze(photo_like_png(), graph)


def test_image_questions(cxr_encoder: ImageEncoder, kermany_fixtures: list[tuple[Path, str]]) -> None:
    from assistant.image_qa import answer_about_image

    pneumonia = next(p for p, label in kermany_fixtures if label == "bacterial").read_bytes()
    yes = answer_about_image(pneumonia, "Is there pneumonia?", cxr_encoder)
    assert yes.verdict == "likely present" and yes.probability is not None and yes.probability >= 0.5
    assert yes.label == "pneumonia" and yes.model == "medkg-cxr"
    effusion = answer_about_image(pneumonia, "Any pleural effusion?", cxr_encoder)
    assert effusion.verdict == "not assessed" and effusion.probability is None
    photo = answer_about_image(photo_like_png(), "Is there pneumonia?", cxr_encoder)
    assert photo.verdict == "out of scope" and not photo.in_scope and photo.probability is None
