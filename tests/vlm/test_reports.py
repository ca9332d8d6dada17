"""Report drafting: grounding checks, template fallback, JSON and FHIR output."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pytest

from assistant.llm.base import ChatMessage, LLMUnavailableError, StructuredOutputError
from assistant.reports import (
    ImageEvidence,
    LLMReport,
    ReportDraft,
    draft_report,
    ground_text,
    template_sections,
    to_fhir,
)
from tests.fixtures.shared_data import FIXTURE_XRAY
from vlm.base import ImageEncoder, ImageError
from vlm.report_bank import ReportBank
from vlm.zero_shot import ImageFinding, standard_cxr_labels


def evidence(**probabilities: float) -> ImageEvidence:
    """ImageEvidence where every standard label scores 0.1 except the ones given (by label id suffix)."""
    scored = [
        ImageFinding(
            label=label.name, finding_id=label.id, probability=probabilities.get(label.id.split(":")[1], 0.1)
        )
        for label in standard_cxr_labels().labels
    ]
    return ImageEvidence(scored, standard_cxr_labels().labels, threshold=0.5, possible_threshold=0.35)


class FakeChat:
    """A ChatModel double: returns a fixed reply (or raises) and records the prompts."""

    model = "fake-llm"

    def __init__(self, reply: LLMReport | Exception) -> None:
        self.reply = reply
        self.prompts: list[str] = []

    def structured(self, messages: Sequence[ChatMessage], schema: type[Any], **_: Any) -> Any:
        self.prompts.append("\n".join(m.content for m in messages))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    def chat(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError

    def stream(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError


# --- grounding -----------------------------------------------------------------------------


def test_unsupported_findings_are_removed() -> None:
    ev = evidence(pleural_effusion=0.8, pneumothorax=0.1, cardiomegaly=0.4)
    text, notes = ground_text(
        "Small left pleural effusion. Large right pneumothorax. Cardiomegaly. "
        "The heart may be enlarged with possible cardiomegaly.",
        ev,
    )
    assert "pleural effusion" in text
    assert "pneumothorax" not in text.lower()
    assert "Cardiomegaly." not in text  # stated flatly at 40%: not supported
    assert "possible cardiomegaly" in text  # hedged and in the possible band: allowed
    assert len(notes) == 2 and any("pneumothorax" in n for n in notes)


def test_negations_are_allowed_unless_they_contradict_the_image() -> None:
    ev = evidence(pleural_effusion=0.8)
    text, notes = ground_text("No pneumothorax. No pleural effusion. Lungs are clear.", ev)
    assert text == "No pneumothorax. Lungs are clear."
    assert notes and "denying pleural effusion" in notes[0]


def test_longest_term_wins_and_plurals_match() -> None:
    ev = evidence(pleural_effusion=0.9)
    text, notes = ground_text("Bilateral pleural effusions.", ev)
    assert text == "Bilateral pleural effusions." and not notes


def test_template_draft_only_states_evidence() -> None:
    findings, impression = template_sections(evidence(pleural_effusion=0.8, atelectasis=0.4))
    assert "pleural effusion" in findings and "80%" in findings
    assert "Possible atelectasis" in findings
    assert "pleural effusion" in impression
    assert ground_text(findings, evidence(pleural_effusion=0.8, atelectasis=0.4))[1] == []
    quiet_findings, quiet_impression = template_sections(evidence())
    assert "No finding reached" in quiet_findings and "No confident abnormality" in quiet_impression


# --- draft_report with a fake LLM ------------------------------------------------------------


def xray() -> bytes:
    return FIXTURE_XRAY.read_bytes()


def test_llm_failure_falls_back_to_template(tiny_encoder: ImageEncoder, tiny_report_bank: ReportBank) -> None:
    for error in (StructuredOutputError("bad json"), LLMUnavailableError("down")):
        draft = draft_report(
            xray(),
            "cough",
            encoder=tiny_encoder,
            chat_model=FakeChat(error),
            report_bank=tiny_report_bank,
        )
        assert draft.generated_by == "template"
        assert any("template draft used" in n for n in draft.validation_notes)
        assert draft.findings and draft.impression


def test_llm_hallucination_is_removed(tiny_encoder: ImageEncoder, tiny_report_bank: ReportBank) -> None:
    labels = standard_cxr_labels().labels[:2]  # score only two labels, so everything else is unscored
    probe = draft_report(xray(), "", encoder=tiny_encoder, chat_model=None, report_bank=None, labels=labels)
    low = [label for label in labels if all(f.finding_id != label.id for f in probe.image_findings)]
    if not low:
        pytest.skip("both labels scored above the possible threshold with this random model")
    claim = f"There is a large {low[0].name}."
    chat = FakeChat(
        LLMReport(findings=f"{claim} Lungs are otherwise clear.", impression=claim, uncertainty=[])
    )
    draft = draft_report(
        xray(),
        "fever",
        encoder=tiny_encoder,
        chat_model=chat,
        report_bank=tiny_report_bank,
        labels=labels,
    )
    assert low[0].name not in draft.findings and low[0].name not in draft.impression
    assert "Lungs are otherwise clear." in draft.findings
    assert draft.generated_by == "llm+template"
    assert any(low[0].name in n for n in draft.validation_notes)
    # The prompt carried the evidence: indication, findings block and similar reports.
    assert "INDICATION: fever" in chat.prompts[0] and "SIMILAR ARCHIVED REPORTS" in chat.prompts[0]


def test_draft_json_text_and_fhir(tiny_encoder: ImageEncoder, tiny_report_bank: ReportBank) -> None:
    draft = draft_report(
        xray(),
        "Shortness of breath.",
        encoder=tiny_encoder,
        chat_model=None,
        report_bank=tiny_report_bank,
    )
    assert draft.generated_by == "template" and draft.llm_model is None
    assert draft.indication == "Shortness of breath."
    assert len(draft.similar_reports) == 3 and draft.similar_report_ids == [
        r.uid for r in draft.similar_reports
    ]
    assert draft.timings.total_s >= draft.timings.encoder_s + draft.timings.retrieval_s
    assert all(f.probability >= draft.possible_threshold for f in draft.image_findings)
    assert draft.text.startswith("INDICATION: Shortness of breath.\nFINDINGS: ")
    again = ReportDraft.model_validate_json(draft.model_dump_json())
    assert again.findings == draft.findings and again.image_findings == draft.image_findings
    assert json.loads(draft.model_dump_json())["text"] == draft.text

    fhir = to_fhir(draft, subject_reference="Patient/example")
    assert_valid_fhir_report(fhir, draft)


def assert_valid_fhir_report(fhir: dict[str, Any], draft: ReportDraft) -> None:
    from fhir.resources.R4B.diagnosticreport import DiagnosticReport

    DiagnosticReport.model_validate(fhir)  # round-trips through the FHIR model
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["status"] == "preliminary"
    assert fhir["conclusion"] == draft.impression
    text = base64.b64decode(fhir["presentedForm"][0]["data"]).decode("utf-8")
    assert text == draft.text
    assert len(fhir.get("contained", [])) == len(draft.image_findings) == len(fhir.get("result", []))
    json.dumps(fhir)  # JSON-ready


def test_bad_upload_is_an_image_error(tiny_encoder: ImageEncoder) -> None:
    with pytest.raises(ImageError):
        draft_report(b"not an image", "x", encoder=tiny_encoder, chat_model=None, report_bank=None)


# --- with the real embedded LLM ------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_report_draft_end_to_end_with_embedded_llm(
    llm_url: str, tiny_encoder: ImageEncoder, tiny_report_bank: ReportBank
) -> None:
    from assistant.llm import OpenAIChatModel

    # Generous timeout: a shared CI box can be slow; on a quiet machine this takes seconds.
    chat = OpenAIChatModel(llm_url, timeout_s=400, max_tokens=200, max_retries=0)
    try:
        draft = draft_report(
            xray(),
            "Cough and fever for three days.",
            encoder=tiny_encoder,
            chat_model=chat,
            report_bank=tiny_report_bank,
            llm_max_tokens=448,
        )
    finally:
        chat.close()
    assert draft.llm_model and draft.timings.llm_s > 0
    # The model answered with schema-valid JSON (a timeout or unparsable reply would say so).
    assert not any("LLM draft unavailable" in note for note in draft.validation_notes), draft.validation_notes
    # A small model's reply is often a loop ("Lung lesion: Lung lesion: ..."): rejected, template used.
    assert draft.generated_by in {"llm", "llm+template"} or any(
        "failed the evidence check" in note or "rejected as degenerate" in note
        for note in draft.validation_notes
    ), draft.validation_notes
    assert draft.findings.strip() and draft.impression.strip()
    reported = {f.finding_id for f in draft.image_findings}
    unreported = [  # labels below the possible threshold: any positive claim about them is unsupported
        ImageFinding(label=label.name, finding_id=label.id, probability=0.0)
        for label in standard_cxr_labels().labels
        if label.id not in reported
    ]
    ev = ImageEvidence(
        [*draft.image_findings, *unreported],
        standard_cxr_labels().labels,
        draft.threshold,
        draft.possible_threshold,
    )
    # Whatever the small model wrote, what survives states nothing the evidence contradicts.
    for section in (draft.findings, draft.impression):
        assert ground_text(section, ev)[1] == [], section
    ReportDraft.model_validate_json(draft.model_dump_json())
    assert_valid_fhir_report(to_fhir(draft), draft)
