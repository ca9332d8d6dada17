"""Answer questions about an image ("is there an effusion?") from its scored findings.

The question is matched to a label by the label's name and synonyms (word boundaries, plural
tolerant; longest match wins, so "pleural effusion" beats "effusion"). The answer restates
the label's zero-shot probability against the reporting threshold; it never goes beyond the
scores: a label the image was not scored for is answered "not assessed".

``answer_about_image`` is the product path (``POST /v1/images/questions``): it scores the image
with the configured encoder (medkg-cxr: its trained head, and "out of scope" for an image unlike
its training images; any other open_clip model: zero-shot over the shipped CXR labels) and
answers from those scores.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel

from vlm.base import ImageEncoder
from vlm.image_io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image
from vlm.zero_shot import DEFAULT_TEMPERATURE, FindingLabel, ZeroShotClassifier, standard_cxr_labels

Verdict = Literal["likely present", "possible", "not detected", "not assessed", "no match", "out of scope"]
ZERO_SHOT_NOTE = "This is a zero-shot score, not a radiologist's read."
TRAINED_NOTE = "This is an automated classifier's probability (medkg-cxr), not a radiologist's read."


class ScoredFinding(Protocol):
    label: str
    finding_id: str | None
    probability: float


class ImageAnswer(BaseModel):
    question: str
    label: str | None  # the label the question was matched to
    finding_id: str | None = None
    probability: float | None = None
    verdict: Verdict
    answer: str
    model: str | None = None  # the encoder that scored the image
    in_scope: bool = True  # False: the image is unlike the model's training images, nothing scored


_WORDS = re.compile(r"[a-z0-9]+")


def answer_image_question(
    question: str,
    findings: Sequence[ScoredFinding],
    *,
    labels: Sequence[FindingLabel] | None = None,
    threshold: float = 0.5,
    possible_threshold: float = 0.35,
    method_note: str = ZERO_SHOT_NOTE,
) -> ImageAnswer:
    """Match the question to a finding label and answer from that label's probability.

    ``findings`` should be every scored label (``ZeroShotClassifier.score``); if it holds only
    the labels above threshold, an unlisted label is answered "not detected above threshold".
    ``labels`` supplies synonyms (defaults to the shipped chest X-ray set plus the findings).
    """
    known = _candidate_labels(findings, labels)
    match = match_label(question, known)
    if match is None:
        names = ", ".join(sorted({f.label for f in findings})[:12]) or "none"
        return ImageAnswer(
            question=question,
            label=None,
            verdict="no match",
            answer=f"I could not match that question to an image finding I can assess (assessed: {names}).",
        )
    scored = _find_score(match, findings)
    if scored is None:
        if findings and all(f.probability >= threshold for f in findings):
            # Only above-threshold findings were passed in: absence means below the threshold.
            return ImageAnswer(
                question=question,
                label=match.name,
                finding_id=match.id,
                verdict="not detected",
                answer=f"{_cap(match.name)} was not detected above the {threshold:.0%} confidence threshold.",
            )
        return ImageAnswer(
            question=question,
            label=match.name,
            finding_id=match.id,
            verdict="not assessed",
            answer=f"The image was not assessed for {match.name}.",
        )
    p = scored.probability
    if p >= threshold:
        verdict: Literal["likely present", "possible", "not detected"] = "likely present"
        text = f"{_cap(scored.label)} is likely present on automated image analysis (confidence {p:.0%})."
    elif p >= possible_threshold:
        verdict = "possible"
        text = (
            f"{_cap(scored.label)} is possible but uncertain "
            f"(confidence {p:.0%}, below the {threshold:.0%} threshold)."
        )
    else:
        verdict = "not detected"
        text = f"{_cap(scored.label)} was not detected (confidence {p:.0%}; threshold {threshold:.0%})."
    return ImageAnswer(
        question=question,
        label=scored.label,
        finding_id=scored.finding_id,
        probability=p,
        verdict=verdict,
        answer=f"{text} {method_note}",
    )


def answer_about_image(
    image: bytes,
    question: str,
    encoder: ImageEncoder,
    *,
    filename: str | None = None,
    threshold: float = 0.5,
    possible_threshold: float = 0.35,
    temperature: float = DEFAULT_TEMPERATURE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageAnswer:
    """Score ``image`` with ``encoder`` and answer ``question`` from the scores.

    Raises ``vlm.ImageError`` for an unreadable upload.
    """
    from vlm.cxr import COVERED_LABELS, cxr_scorer_for, out_of_scope_message, score_findings

    loaded = load_image(image, filename=filename, max_bytes=max_bytes, max_pixels=max_pixels)
    scorer = cxr_scorer_for(encoder)
    if scorer is None:
        labels = standard_cxr_labels().labels
        scored = ZeroShotClassifier(encoder, labels=labels, temperature=temperature).score(loaded.image)
        answer = answer_image_question(
            question, scored, labels=labels, threshold=threshold, possible_threshold=possible_threshold
        )
        return answer.model_copy(update={"model": encoder.name})
    score = scorer.score([loaded.image])[0]
    if not score.in_scope:
        return ImageAnswer(
            question=question,
            label=None,
            verdict="out of scope",
            answer=f"Not assessed: {out_of_scope_message(score)}.",
            model=encoder.name,
            in_scope=False,
        )
    # The covered labels carry scores; every other CXR label matches but is "not assessed".
    covered_and_rest = [
        *COVERED_LABELS,
        *(lbl for lbl in standard_cxr_labels().labels if lbl.id != "cxr:pneumonia"),
    ]
    answer = answer_image_question(
        question,
        score_findings(score),
        labels=covered_and_rest,
        threshold=threshold,
        possible_threshold=possible_threshold,
        method_note=TRAINED_NOTE,
    )
    return answer.model_copy(update={"model": encoder.name})


def match_label(question: str, labels: Sequence[FindingLabel]) -> FindingLabel | None:
    """The label whose name/synonym appears in the question; the longest matching term wins."""
    words = [_stem(w) for w in _WORDS.findall(question.lower())]
    text = f" {' '.join(words)} "
    best: tuple[int, FindingLabel] | None = None
    for label in labels:
        for term in label.terms:
            stemmed = " ".join(_stem(w) for w in _WORDS.findall(term))
            if stemmed and f" {stemmed} " in text and (best is None or len(stemmed) > best[0]):
                best = (len(stemmed), label)
    return best[1] if best else None


def _candidate_labels(
    findings: Sequence[ScoredFinding], labels: Sequence[FindingLabel] | None
) -> list[FindingLabel]:
    out = list(labels) if labels is not None else list(standard_cxr_labels().labels)
    known_ids = {label.id for label in out}
    for f in findings:  # findings may carry labels (e.g. graph findings) the label list lacks
        if f.finding_id not in known_ids:
            out.append(FindingLabel(id=f.finding_id or f.label, name=f.label))
    return out


def _find_score(label: FindingLabel, findings: Sequence[ScoredFinding]) -> ScoredFinding | None:
    terms = set(label.terms)
    for f in findings:
        if f.finding_id == label.id or f.label.lower() in terms:
            return f
    return None


def _stem(word: str) -> str:
    """Plural-insensitive comparison ("effusions" == "effusion"); deliberately minimal."""
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "is", "us")):
        return word[:-1]
    return word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
