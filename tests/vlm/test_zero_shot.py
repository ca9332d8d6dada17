"""Zero-shot calibration properties and label handling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlm.base import ImageEncoder
from vlm.zero_shot import ZeroShotClassifier, calibrate, labels_from_findings, standard_cxr_labels

margins = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False)
temperatures = st.floats(min_value=1e-3, max_value=10.0, allow_nan=False)


@given(margins, temperatures)
def test_calibration_is_a_pairwise_softmax(margin: float, temperature: float) -> None:
    p = float(calibrate(np.array([margin]), temperature)[0])
    logits = np.array([margin, 0.0]) / temperature
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(softmax[0], abs=1e-9)
    assert p + float(calibrate(np.array([-margin]), temperature)[0]) == pytest.approx(1.0)  # symmetric


@given(margins, margins, temperatures)
def test_calibration_is_monotone(a: float, b: float, temperature: float) -> None:
    pa, pb = calibrate(np.array([a, b]), temperature)
    if a < b:
        assert pa <= pb


def test_temperature_controls_confidence() -> None:
    assert calibrate(np.array([0.0]), 0.05)[0] == 0.5
    sharp, soft = calibrate(np.array([0.05]), 0.01)[0], calibrate(np.array([0.05]), 1.0)[0]
    assert 0.5 < soft < sharp
    assert np.isfinite(calibrate(np.array([-1e6, 1e6]), 1e-3)).all()
    with pytest.raises(ValueError):
        calibrate(np.array([0.1]), 0.0)


def test_standard_label_set() -> None:
    labels = standard_cxr_labels().labels
    names = {label.name for label in labels}
    assert {"pleural effusion", "pneumothorax", "cardiomegaly", "atelectasis", "consolidation"} <= names
    assert len({label.id for label in labels}) == len(labels) >= 14


def test_graph_findings_merge_with_standard_labels() -> None:
    merged = labels_from_findings(
        [("F:123", "Pleural effusion", ["fluid in the pleural space"]), ("F:9", "Hilar lymphadenopathy", [])]
    )
    effusion = [label for label in merged if "pleural effusion" in label.terms]
    assert len(effusion) == 1 and effusion[0].id == "F:123"  # the graph id wins
    assert "hydrothorax" in effusion[0].terms  # and gains the standard synonyms
    assert any(label.id == "F:9" for label in merged)
    assert len(merged) == len(standard_cxr_labels().labels) + 1
    assert len(labels_from_findings([("F:9", "Hilar lymphadenopathy", [])], include_standard=False)) == 1


def test_classifier_scores_follow_prompt_geometry(tiny_encoder: ImageEncoder) -> None:
    classifier = ZeroShotClassifier(tiny_encoder)
    positive, negative = classifier.prompt_embeddings()
    index = 3
    toward_present = classifier.score_embeddings(positive[index][None, :])[0]
    toward_absent = classifier.score_embeddings(negative[index][None, :])[0]
    label = classifier.labels[index].name
    p_present = next(f.probability for f in toward_present if f.label == label)
    p_absent = next(f.probability for f in toward_absent if f.label == label)
    assert p_present > 0.5 > p_absent
    # Every label is scored once, most probable first, probabilities match their margins.
    assert len(toward_present) == len(classifier.labels)
    probs = [f.probability for f in toward_present]
    assert probs == sorted(probs, reverse=True)
    for finding in toward_present:
        assert finding.probability == pytest.approx(
            float(calibrate(np.array([finding.margin]), 0.05)[0]), abs=2e-3
        )


def test_classifier_on_an_image(tiny_encoder: ImageEncoder) -> None:
    from PIL import Image

    image = Image.new("RGB", (64, 64), (128, 128, 128))
    classifier = ZeroShotClassifier(tiny_encoder, temperature=None)  # the model's own logit scale
    scored = classifier.score(image)
    assert all(0.0 <= f.probability <= 1.0 for f in scored)
    assert all(f.probability >= 0.5 for f in classifier.findings(image, threshold=0.5))
    assert classifier.findings(image, threshold=0.999999) == [f for f in scored if f.probability >= 0.999999]
