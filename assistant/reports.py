"""Draft radiology reports from an image: zero-shot findings + similar reports + the LLM.

Flow: load the image (vlm.image_io) -> embed it and score the finding labels (encoder time)
-> nearest archived reports (retrieval time) -> the LLM writes FINDINGS / IMPRESSION as JSON
(LLM time) -> every sentence is checked against the evidence (``ground_text``): a finding named
as present that the image findings do not support, or named as absent although they support
it, is removed and noted. An empty or failed LLM section is replaced by a deterministic
template written from the evidence alone, so a weak or unreachable LLM still yields an honest
draft. The INDICATION is the clinician's text, restated, never rewritten by the model.

With the default model (medkg-cxr, a trained pediatric chest X-ray classifier) the evidence is
its own scores (pneumonia, bacterial/viral pattern, normal); every other chest X-ray finding is
"not assessed" and a sentence claiming one is removed; the draft states the model's reach; an
image outside that reach (adult film, CT, photo) gets a draft that says so and no findings.

Degenerate text (a repeated phrase such as "Lung lesion: Lung lesion: ...", a repeated
sentence, a section heading inside a section) never reaches the user or the FHIR export: an
LLM section like that is replaced by the template, and ``ReportDraft`` refuses such text
(``degenerate_reason``), so an edited draft that degenerates cannot be exported.

``to_fhir`` exports a FHIR R4 DiagnosticReport (validated with the ``fhir.resources`` R4B
model: fhir.resources 8 ships R5 as default and R4B (4.3.0) as the R4-line package; the
DiagnosticReport and Observation elements used here are unchanged from R4 4.0.1).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from assistant.agent.render import percent
from assistant.llm.base import ChatMessage, ChatModel, LLMError
from assistant.untrusted import guard_untrusted
from prompts import load_prompt
from vlm.base import ImageEncoder
from vlm.image_io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image
from vlm.report_bank import ReportBank, SimilarReport
from vlm.zero_shot import (
    DEFAULT_TEMPERATURE,
    FindingLabel,
    ImageFinding,
    ZeroShotClassifier,
    standard_cxr_labels,
)

log = logging.getLogger(__name__)

DRAFT_DISCLAIMER = (
    "Automated preliminary draft for review by a qualified radiologist; not a diagnosis. "
    "Image findings are zero-shot image-text similarity scores, not a validated classifier."
)
CXR_DISCLAIMER = (
    "Automated preliminary draft for review by a qualified radiologist; not a diagnosis. "
    "Image findings are probabilities from medkg-cxr, a small model trained on pediatric chest "
    "X-rays (normal / bacterial / viral pneumonia); it assesses nothing else."
)
MAX_INDICATION_CHARS = 2000
RADIOGRAPH_MODALITIES = {"CR", "DX", "RG"}

# Sentence-level cues for grounding checks (NegEx-style, deliberately simple and visible).
_NEGATION = re.compile(
    r"\b(no|not|without|negative for|absence of|absent|free of|resolved|rule[sd]? out|ruled out)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(possible|possibly|may|might|could|suggest(?:s|ed|ive)?|cannot be excluded|cannot exclude|"
    r"uncertain|questionable|equivocal|probable|likely|borderline|concern for|versus)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


# --- models --------------------------------------------------------------------------------


class ReportTimings(BaseModel):
    load_s: float = 0.0  # decode + validate the upload
    encoder_s: float = 0.0  # image embedding + zero-shot scoring
    retrieval_s: float = 0.0  # report-bank search
    llm_s: float = 0.0  # structured LLM call(s)
    total_s: float = 0.0


class ImageSummary(BaseModel):
    format: str
    width: int
    height: int
    frames: int = 1
    modality: str | None = None


class ReportDraft(BaseModel):
    indication: str
    findings: str
    impression: str
    image_findings: list[ImageFinding]  # labels at or above the "possible" threshold
    similar_reports: list[SimilarReport] = Field(default_factory=list)
    uncertainty: list[str] = Field(default_factory=list)
    validation_notes: list[str] = Field(default_factory=list)  # what the grounding check changed
    generated_by: Literal["llm", "llm+template", "template"]
    encoder_model: str
    llm_model: str | None = None
    threshold: float
    possible_threshold: float
    temperature: float
    image: ImageSummary
    timings: ReportTimings
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    disclaimer: str = DRAFT_DISCLAIMER
    in_scope: bool = True  # False: the image is outside the model's reach; nothing was scored

    @model_validator(mode="after")
    def _not_degenerate(self) -> ReportDraft:
        for section in ("findings", "impression"):
            reason = degenerate_reason(getattr(self, section))
            if reason:
                raise ValueError(f"degenerate {section.upper()} section: {reason}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def similar_report_ids(self) -> list[str]:
        return [r.uid for r in self.similar_reports]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        lines = [
            f"INDICATION: {self.indication}",
            f"FINDINGS: {self.findings}",
            f"IMPRESSION: {self.impression}",
        ]
        if self.uncertainty:
            lines.append("UNCERTAINTY: " + " ".join(self.uncertainty))
        lines.append(f"NOTE: {self.disclaimer}")
        return "\n".join(lines)


MAX_SECTION_CHARS = {"findings": 600, "impression": 300}
MAX_NOTE_CHARS = 150
MAX_LLM_UNCERTAINTY_NOTES = 3


class LLMReport(BaseModel):
    """What the LLM is asked to return.

    The length bounds go into the JSON schema, hence into llama.cpp's grammar / vLLM's guided
    decoding: without them a small model writes one section until max_tokens cuts the JSON
    off. Their sum stays inside the default token budget.
    """

    findings: str = Field(max_length=MAX_SECTION_CHARS["findings"])
    impression: str = Field(max_length=MAX_SECTION_CHARS["impression"])
    uncertainty: list[Annotated[str, Field(max_length=MAX_NOTE_CHARS)]] = Field(
        default_factory=list, max_length=MAX_LLM_UNCERTAINTY_NOTES
    )


# --- degenerate text ------------------------------------------------------------------------

_HEADING = re.compile(
    r"\b(indication|findings|impression|technique|comparison|history|clinical history|"
    r"clinical information|recommendations?|conclusion|examination|exam|procedure|"
    r"uncertainty|note)\s*:",
    re.IGNORECASE,
)
_REPEATED_PREFIX = re.compile(r"([A-Za-z][A-Za-z ,/-]{2,60}?)\s*:\s*\1\s*:", re.IGNORECASE)
_NGRAM = 8


def degenerate_reason(text: str, *, strict: bool = False) -> str | None:
    """Why a report section is degenerate (a small model's loop, a stray heading), else None.

    ``strict`` (LLM output) also refuses any repeated 8-word phrase; the deterministic
    templates can legitimately repeat one ("... (confidence 62%). Appearance suggestive of").
    """
    if not text:
        return None
    match = _REPEATED_PREFIX.search(text)
    if match:
        return f"repeated phrase {match.group(0)[:60]!r}"
    heading = _HEADING.search(text)
    if heading:
        return f"unsupported section heading {heading.group(0)!r} inside a section"
    sentences = [" ".join(_WORD.findall(x.lower())) for x in _SENTENCE.split(text)]
    sentences = [x for x in sentences if len(x.split()) >= 3]
    if len(sentences) != len(set(sentences)):
        return "a sentence is repeated"
    words = _WORD.findall(text.lower())
    for run in range(len(words) - 3):
        if len(set(words[run : run + 4])) == 1:
            return f"the word {words[run]!r} repeats"
    grams = [" ".join(words[i : i + _NGRAM]) for i in range(len(words) - _NGRAM + 1)]
    if strict and len(grams) != len(set(grams)):
        repeated = next(g for g in grams if grams.count(g) > 1)
        return f"repeated phrase {repeated!r}"
    return None


_WORD = re.compile(r"[a-z0-9]+")


# --- drafting ------------------------------------------------------------------------------


def draft_report(
    image_bytes: bytes,
    indication: str,
    *,
    encoder: ImageEncoder,
    chat_model: ChatModel | None,
    report_bank: ReportBank | None,
    filename: str | None = None,
    labels: Sequence[FindingLabel] | None = None,
    threshold: float = 0.5,
    possible_threshold: float = 0.35,
    temperature: float = DEFAULT_TEMPERATURE,
    k_similar: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    llm_max_tokens: int = 448,
) -> ReportDraft:
    """A grounded draft report; raises ``vlm.ImageError`` for an unreadable upload."""
    if not 0.0 < possible_threshold <= threshold < 1.0:
        raise ValueError("need 0 < possible_threshold <= threshold < 1")
    started = time.perf_counter()
    timings = ReportTimings()

    loaded = load_image(image_bytes, filename=filename, max_bytes=max_bytes, max_pixels=max_pixels)
    timings.load_s = time.perf_counter() - started

    mark = time.perf_counter()
    from vlm.cxr import COVERED_LABELS, REACH, cxr_scorer_for, out_of_scope_message, score_findings

    scorer = cxr_scorer_for(encoder)
    in_scope = True
    not_assessed: tuple[FindingLabel, ...] = ()
    if scorer is not None:
        features = scorer.features([loaded.image])
        embedding = features["embedding"][0]
        cxr_score = scorer.score_features(features)[0]
        in_scope = cxr_score.in_scope
        label_set: tuple[FindingLabel, ...] = COVERED_LABELS
        scored = score_findings(cxr_score)
        covered = {term for label in COVERED_LABELS for term in label.terms}
        not_assessed = tuple(
            label for label in standard_cxr_labels().labels if not covered & set(label.terms)
        )
    else:
        label_set = tuple(labels) if labels else standard_cxr_labels().labels
        embedding = encoder.encode_images([loaded.image])[0]
        scored = _classifier(encoder, label_set, temperature).score_embeddings(embedding[None, :])[0]
    timings.encoder_s = time.perf_counter() - mark

    mark = time.perf_counter()
    use_bank = report_bank is not None and k_similar > 0 and in_scope
    similar = report_bank.nearest(embedding, k_similar) if report_bank is not None and use_bank else []
    timings.retrieval_s = time.perf_counter() - mark

    indication_text = _clean_indication(indication)
    evidence = ImageEvidence(scored, label_set, threshold, possible_threshold, not_assessed=not_assessed)
    uncertainty = _standard_notes(
        loaded.modality, report_bank is not None, similar, trained=scorer is not None
    )
    validation: list[str] = []
    generated_by: Literal["llm", "llm+template", "template"] = "template"
    if scorer is None:
        findings, impression = template_sections(evidence)
    elif in_scope:
        findings, impression = cxr_template_sections(evidence)
        uncertainty.insert(0, f"Model reach: {REACH}.")
    else:
        reason = out_of_scope_message(cxr_score)
        findings = f"Not assessed: {reason}."
        impression = "No automated assessment (image outside the model's scope). Radiologist review required."
        uncertainty.insert(0, f"Model reach: {REACH}.")
        chat_model = None  # nothing grounded to write from; an LLM would only invent

    if chat_model is not None:
        mark = time.perf_counter()
        try:
            reply = chat_model.structured(
                _messages(indication_text, evidence, similar),
                LLMReport,
                temperature=0.0,
                max_tokens=llm_max_tokens,
            )
        except LLMError as exc:
            validation.append(f"LLM draft unavailable ({type(exc).__name__}); template draft used")
            reply = None
        timings.llm_s = time.perf_counter() - mark
        rejected = reply is not None and (
            degenerate_reason(reply.findings, strict=True) or degenerate_reason(reply.impression, strict=True)
        )
        if rejected:
            validation.append(f"LLM draft rejected as degenerate ({rejected}); template draft used")
            reply = None
        if reply is not None:
            llm_findings, notes_f = ground_text(_cut(reply.findings, "findings"), evidence)
            llm_impression, notes_i = ground_text(_cut(reply.impression, "impression"), evidence)
            validation += notes_f + notes_i
            used = 0
            if llm_findings:
                findings = _complete_findings(llm_findings, evidence)
                used += 1
            if llm_impression:
                impression = llm_impression
                used += 1
            if used:
                generated_by = "llm" if used == 2 and not (notes_f or notes_i) else "llm+template"
            else:
                validation.append("LLM draft failed the evidence check; template draft used")
            for note in reply.uncertainty[:MAX_LLM_UNCERTAINTY_NOTES]:
                grounded, _ = ground_text(note, evidence)
                if grounded and grounded not in uncertainty and not degenerate_reason(grounded, strict=True):
                    uncertainty.append(grounded)

    timings.total_s = time.perf_counter() - started
    width, height = loaded.original_size
    return ReportDraft(
        indication=indication_text,
        findings=findings,
        impression=impression,
        image_findings=evidence.reportable,
        similar_reports=similar,
        uncertainty=uncertainty,
        validation_notes=validation,
        generated_by=generated_by,
        encoder_model=encoder.name,
        llm_model=getattr(chat_model, "model", None) if chat_model is not None else None,
        threshold=threshold,
        possible_threshold=possible_threshold,
        temperature=temperature,
        disclaimer=CXR_DISCLAIMER if scorer is not None else DRAFT_DISCLAIMER,
        in_scope=in_scope,
        image=ImageSummary(
            format=loaded.format, width=width, height=height, frames=loaded.frames, modality=loaded.modality
        ),
        timings=timings,
    )


_CLASSIFIERS: dict[tuple[int, tuple[FindingLabel, ...], float], ZeroShotClassifier] = {}
_CLASSIFIER_CACHE_SIZE = 8
_CLASSIFIERS_LOCK = threading.Lock()


def _classifier(
    encoder: ImageEncoder, labels: tuple[FindingLabel, ...], temperature: float
) -> ZeroShotClassifier:
    """Prompt embeddings are the costly part of scoring; reuse them per encoder and label set."""
    key = (id(encoder), labels, temperature)
    with _CLASSIFIERS_LOCK:
        cached = _CLASSIFIERS.get(key)
    if cached is not None and cached.encoder is encoder:  # id() alone can be reused after GC
        return cached
    classifier = ZeroShotClassifier(encoder, labels=labels, temperature=temperature)
    classifier.prompt_embeddings()
    with _CLASSIFIERS_LOCK:
        while len(_CLASSIFIERS) >= _CLASSIFIER_CACHE_SIZE:
            _CLASSIFIERS.pop(next(iter(_CLASSIFIERS)))
        _CLASSIFIERS[key] = classifier
    return classifier


class ImageEvidence:
    """The scored labels and what each one allows the report to say."""

    def __init__(
        self,
        scored: Sequence[ImageFinding],
        labels: Sequence[FindingLabel],
        threshold: float,
        possible_threshold: float,
        *,
        not_assessed: Sequence[FindingLabel] = (),
    ) -> None:
        self.scored = list(scored)
        # Labels the model cannot see: any sentence naming one is unsupported, even a denial.
        self.not_assessed = [(_term_pattern(term), label) for label in not_assessed for term in label.terms]
        self.threshold = threshold
        self.possible_threshold = possible_threshold
        by_id = {f.finding_id: f for f in scored}
        # (term regex, label, probability), longest terms first so "pleural effusion" wins over "effusion"
        entries = []
        for label in labels:
            finding = by_id.get(label.id)
            if finding is None:
                continue
            for term in label.terms:
                entries.append((term, label, finding.probability))
        entries.sort(key=lambda e: -len(e[0]))
        self.terms = [(_term_pattern(term), label, p) for term, label, p in entries]

    @property
    def present(self) -> list[ImageFinding]:
        return [f for f in self.scored if f.probability >= self.threshold]

    @property
    def possible(self) -> list[ImageFinding]:
        return [f for f in self.scored if self.possible_threshold <= f.probability < self.threshold]

    @property
    def reportable(self) -> list[ImageFinding]:
        return self.present + self.possible


def _term_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"(?:s|es)?\b", re.IGNORECASE)


def ground_text(text: str, evidence: ImageEvidence) -> tuple[str, list[str]]:
    """Drop sentences whose finding claims the evidence does not support; say what was dropped."""
    kept: list[str] = []
    notes: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE.split(text or "")):
        if not sentence:
            continue
        problem = _unsupported_claim(sentence, evidence)
        if problem:
            notes.append(problem)
        else:
            kept.append(sentence)
    return " ".join(kept).strip(), notes


def _unsupported_claim(sentence: str, evidence: ImageEvidence) -> str | None:
    assessed_spans = [m.span() for pattern, _, _ in evidence.terms for m in pattern.finditer(sentence)]
    for pattern, label in evidence.not_assessed:
        for match in pattern.finditer(sentence):
            if not any(start <= match.start() < end for start, end in assessed_spans):
                return f"removed a statement about {label.name}, which the image model does not assess"
    covered: list[tuple[int, int]] = []
    for pattern, label, probability in evidence.terms:
        for match in pattern.finditer(sentence):
            if any(start <= match.start() < end for start, end in covered):
                continue  # already judged as part of a longer term
            covered.append((match.start(), match.end()))
            before = sentence[: match.start()]
            negated = bool(_NEGATION.search(before))
            hedged = bool(_HEDGE.search(sentence))
            pct = f"{probability:.0%}"
            if negated and probability >= evidence.threshold:
                return f"removed a sentence denying {label.name}, which the image analysis supports ({pct})"
            if negated:
                continue
            if probability >= evidence.threshold:
                continue
            if probability >= evidence.possible_threshold and hedged:
                continue
            return f"removed an unsupported statement of {label.name} (image confidence {pct})"
    return None


def template_sections(evidence: ImageEvidence) -> tuple[str, str]:
    """FINDINGS and IMPRESSION written from the evidence alone (the fallback draft)."""
    present, possible = evidence.present, evidence.possible
    sentences = [
        f"Appearance suggestive of {f.label} on automated analysis (confidence {f.probability:.0%})."
        for f in present
    ]
    sentences += [f"Possible {f.label}, uncertain (confidence {f.probability:.0%})." for f in possible]
    if not sentences:
        sentences.append(
            "No finding reached the reporting threshold "
            f"({evidence.threshold:.0%} confidence) on automated image analysis."
        )
    if present:
        impression = (
            f"Automated analysis suggests {_join(f.label for f in present)}. Radiologist review required."
        )
    elif possible:
        impression = (
            f"No confident abnormality; possible {_join(f.label for f in possible)} cannot be excluded. "
            "Radiologist review required."
        )
    else:
        impression = "No confident abnormality on automated analysis. Radiologist review required."
    return " ".join(sentences), impression


def cxr_template_sections(evidence: ImageEvidence) -> tuple[str, str]:
    """FINDINGS and IMPRESSION from medkg-cxr's scores (pneumonia and its pattern, or normal)."""
    p = {f.finding_id: f.probability for f in evidence.scored}
    pneumonia = p.get("cxr:pneumonia", 0.0)
    bacterial = p.get("cxr:bacterial_pneumonia", 0.0)
    viral = p.get("cxr:viral_pneumonia", 0.0)
    pattern = "bacterial" if bacterial >= viral else "viral"
    share = max(bacterial, viral) / pneumonia if pneumonia > 0 else 0.5
    if pneumonia >= evidence.threshold:
        findings = (
            f"Appearance suggestive of pneumonia on automated analysis (probability {percent(pneumonia)}); "
            f"the pattern favours {pattern} over {'viral' if pattern == 'bacterial' else 'bacterial'} "
            f"({percent(share)} {pattern})."
        )
        impression = (
            f"Automated analysis suggests pneumonia, {pattern} pattern more likely. "
            "Radiologist review required."
        )
    elif pneumonia >= evidence.possible_threshold:
        findings = f"Possible pneumonia, uncertain (probability {percent(pneumonia)})."
        impression = (
            "No confident abnormality; possible pneumonia cannot be excluded. Radiologist review required."
        )
    else:
        findings = f"No pneumonia on automated analysis (probability of pneumonia {percent(pneumonia)})."
        impression = "No pneumonia detected on automated analysis. Radiologist review required."
    return findings, impression


def _complete_findings(text: str, evidence: ImageEvidence) -> str:
    """Append supported findings the LLM left out, so the draft never hides evidence."""
    missing = [
        f
        for f in evidence.present
        if not any(label.id == f.finding_id and pattern.search(text) for pattern, label, _ in evidence.terms)
    ]
    extra = [f"Automated analysis also suggests {f.label} (confidence {f.probability:.0%})." for f in missing]
    return " ".join([text, *extra]).strip()


def _cut(text: str, section: str) -> str:
    """Bound a section; cut at the last full sentence that fits."""
    limit = MAX_SECTION_CHARS[section]
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = max(head.rfind(". "), head.rfind(".\n"))
    return head[: end + 1] if end > 0 else head


def _join(items: Any) -> str:
    names = list(dict.fromkeys(items))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _messages(
    indication: str, evidence: ImageEvidence, similar: Sequence[SimilarReport]
) -> list[ChatMessage]:
    system = load_prompt("report_system").render(
        threshold_pct=f"{evidence.threshold:.0%}", possible_pct=f"{evidence.possible_threshold:.0%}"
    )
    findings = "\n".join(f"- {f.label}: {f.probability:.0%}" for f in evidence.reportable) or (
        f"- none at or above {evidence.possible_threshold:.0%}"
    )
    reports = (
        "\n".join(
            f"- #{r.uid} (similarity {r.score:.2f}): {r.findings} {r.impression}".strip()[:400]
            for r in similar
        )
        or "- none"
    )
    user = load_prompt("report_draft").render(
        indication=indication, image_findings=findings, similar_reports=reports
    )
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]


def _clean_indication(indication: str) -> str:
    text = " ".join(guard_untrusted(indication or "").text.split())  # instructions never reach the prompt
    if len(text) > MAX_INDICATION_CHARS:
        text = text[:MAX_INDICATION_CHARS].rstrip() + "…"
    return text or "Not provided."


def _standard_notes(
    modality: str | None, has_bank: bool, similar: Sequence[SimilarReport], *, trained: bool = False
) -> list[str]:
    notes = [
        "Image findings are classifier probabilities and need radiologist confirmation."
        if trained
        else "Image findings are zero-shot similarity scores and need radiologist confirmation."
    ]
    if modality and modality.upper() not in RADIOGRAPH_MODALITIES:
        notes.append(
            f"The image is {modality}, but the finding labels and report bank are for chest radiographs."
        )
    if not has_bank:
        notes.append("No report bank was available: no similar archived reports were consulted.")
    elif similar:
        notes.append(
            "Most similar archived reports (other patients): " + ", ".join(f"#{r.uid}" for r in similar) + "."
        )
    return notes


# --- FHIR ----------------------------------------------------------------------------------

LOINC = "http://loinc.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def to_fhir(
    draft: ReportDraft,
    *,
    report_id: str | None = None,
    subject_reference: str | None = None,
) -> dict[str, Any]:
    """The draft as a FHIR R4 DiagnosticReport (status preliminary), validated, as JSON-ready dict.

    Image findings go in as contained Observations (value = model probability) referenced
    from ``result``; the full text is the ``presentedForm``.
    """
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    issued = draft.created_at.astimezone(UTC).isoformat()
    observations = []
    for index, finding in enumerate(draft.image_findings, start=1):
        status = "present" if finding.probability >= draft.threshold else "possible"
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"finding-{index}",
            "status": "preliminary",
            "category": [
                {"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}]}
            ],
            "code": {"text": finding.label},
            "valueQuantity": {"value": round(finding.probability, 4), "unit": "probability"},
            "interpretation": [{"text": f"{status} (zero-shot, threshold {draft.threshold:.2f})"}],
            "method": {"text": f"zero-shot image-text similarity ({draft.encoder_model})"},
            "issued": issued,
        }
        if finding.finding_id:
            observation["code"]["coding"] = [{"system": "urn:medkg:finding", "code": finding.finding_id}]
        if subject_reference:
            observation["subject"] = {"reference": subject_reference}
        observations.append(observation)

    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report_id or str(uuid.uuid4()),
        "status": "preliminary",
        "category": [{"coding": [{"system": V2_0074, "code": "RAD", "display": "Radiology"}]}],
        "code": {
            "coding": [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}],
            "text": "Draft imaging report",
        },
        "issued": issued,
        "conclusion": draft.impression,
        "presentedForm": [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "en",
                "data": base64.b64encode(draft.text.encode("utf-8")).decode("ascii"),
                "title": "Draft report (preliminary, machine-generated)",
                "creation": issued,
            }
        ],
    }
    if observations:
        resource["contained"] = observations
        resource["result"] = [{"reference": f"#{o['id']}"} for o in observations]
    if subject_reference:
        resource["subject"] = {"reference": subject_reference}
    validated = DiagnosticReport.model_validate(resource)
    return dict(validated.model_dump(mode="json", exclude_none=True))
