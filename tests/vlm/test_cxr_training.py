"""medkg vision train: patient grouping, the split, and a full (tiny) training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.shared_data import optional_shared
from tests.fixtures.vlm import KERMANY_FIXTURES
from vlm.cxr_data import label_of, patient_id, scan, split_by_patient

# A CLIP small enough to train on 8 images in a few seconds: the production architecture family
# (ModifiedResNet + text transformer over the CLIP vocabulary) at 32 px.
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person1_bacteria_1.jpeg", "person1"),
        ("person1_virus_6.jpeg", "person1"),
        ("person1000_bacteria_2931.jpeg", "person1000"),
        ("IM-0001-0001.jpeg", "IM-0001"),
        ("IM-0001-0002.jpeg", "IM-0001"),
        ("NORMAL2-IM-0955-0001.jpeg", "NORMAL2-IM-0955"),
        ("odd name.png", "odd name"),
    ],
)
def test_patient_ids(name: str, patient: str) -> None:
    assert patient_id(name) == patient


def test_labels_from_folders_and_names() -> None:
    assert label_of(Path("x/NORMAL/IM-0001-0001.jpeg")) == "normal"
    assert label_of(Path("x/PNEUMONIA/person1_bacteria_1.jpeg")) == "bacterial"
    assert label_of(Path("x/pneumonia/person1_virus_1.jpeg")) == "viral"
    assert label_of(Path("x/PNEUMONIA/other.jpeg")) == "pneumonia"
    assert label_of(Path("x/OTHER/a.jpeg")) is None


def test_split_keeps_each_patient_on_one_side() -> None:
    samples = scan(KERMANY_FIXTURES)
    assert len(samples) == 8
    many = [s for s in samples for _ in range(3)]  # repeated images of the same patients
    train, val = split_by_patient(many, fraction=0.5, seed=1)
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    # Deterministic and independent of order.
    assert split_by_patient(list(reversed(many)), fraction=0.5, seed=1)[1][::-1] == val


def test_shipped_fixtures_are_outside_the_reported_validation_split() -> None:
    from vlm.cxr_data import in_validation

    assert not any(in_validation(s.group, fraction=0.15, seed=0) for s in scan(KERMANY_FIXTURES))


def test_training_end_to_end_on_fixture_images(tmp_path: Path) -> None:
    """Train 1 epoch on the 8 fixture images, load the result through the production factory."""
    from vlm.cxr import CxrScorer
    from vlm.encoder import create_encoder
    from vlm.training import TrainConfig, train

    def run(out: Path) -> None:
        train(
            TrainConfig(
                data=KERMANY_FIXTURES,
                out=out,
                seed=3,
                epochs=1,
                batch_size=4,
                image_size=32,
                val_fraction=0.3,
                cache_dir=tmp_path / "cache",
                model_cfg=json.loads(json.dumps(TINY_CFG)),
            )
        )

    run(tmp_path / "a")
    files = {p.name for p in (tmp_path / "a").iterdir()}
    expected = {"open_clip_config.json", "open_clip_model.safetensors", "medkg_cxr.json", "medkg_scope.npz"}
    assert expected | {"medkg_heads.npz"} <= files
    encoder = create_encoder(str(tmp_path / "a"))
    scorer = CxrScorer.for_encoder(encoder)
    assert scorer is not None
    from PIL import Image

    with Image.open(next(KERMANY_FIXTURES.rglob("*.jpeg"))) as image:
        probs = scorer.raw_probabilities(scorer.features([image.convert("RGB")]))
    assert 0.0 <= float(probs["p_pneumonia"][0]) <= 1.0

    run(tmp_path / "b")  # same seed, same weights
    spec_a = json.loads((tmp_path / "a" / "medkg_cxr.json").read_text())
    spec_b = json.loads((tmp_path / "b" / "medkg_cxr.json").read_text())
    assert spec_a["logit_scale"] == spec_b["logit_scale"]
    assert spec_a["scope"]["threshold"] == spec_b["scope"]["threshold"]
    weights = "open_clip_model.safetensors"
    assert (tmp_path / "a" / weights).read_bytes() == (tmp_path / "b" / weights).read_bytes()


def test_metrics_auroc_and_ece() -> None:
    from vlm.cxr import auroc, bootstrap_auroc, expected_calibration_error

    y = np.array([0, 0, 1, 1])
    assert auroc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auroc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    point, low, high = bootstrap_auroc(y, np.array([0.1, 0.6, 0.4, 0.9]), rounds=200)
    assert point == 0.75 and 0.0 <= low <= point <= high <= 1.0
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    assert expected_calibration_error(np.array([0, 0]), np.array([0.9, 0.9])) == pytest.approx(0.9)


def test_training_data_split_on_the_shared_set() -> None:
    data = optional_shared("images/kermany_cxr/train")
    train, val = split_by_patient(scan(data), fraction=0.15, seed=0)
    assert len(train) + len(val) == 5216
    assert {s.group for s in train}.isdisjoint({s.group for s in val})
    assert 0.1 < len(val) / 5216 < 0.2
