"""Report drafts with the shipped model: its reach stated, unlike images refused, degenerate text rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from assistant.reports import LLMReport, ReportDraft, degenerate_reason, draft_report, to_fhir
from tests.fixtures.vlm import photo_like_png
from tests.vlm.test_reports import FakeChat
from vlm.base import ImageEncoder


def _pneumonia(fixtures: list[tuple[Path, str]]) -> bytes:
    return next(p for p, label in fixtures if label == "bacterial").read_bytes()


def test_template_draft_states_the_reach(
    cxr_encoder: ImageEncoder, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    draft = draft_report(
        _pneumonia(kermany_fixtures), "Fever, cough", encoder=cxr_encoder, chat_model=None, report_bank=None
    )
    assert draft.in_scope and draft.encoder_model == "medkg-cxr"
    assert "pneumonia" in draft.findings.lower() and "pneumonia" in draft.impression.lower()
    assert any(note.startswith("Model reach:") and "not assessed" in note for note in draft.uncertainty)
    assert "medkg-cxr" in draft.disclaimer
    assert {f.finding_id for f in draft.image_findings} >= {"cxr:pneumonia"}
    fhir = to_fhir(draft)
    assert fhir["resourceType"] == "DiagnosticReport" and fhir["contained"]


def test_out_of_scope_image_gets_no_findings(cxr_encoder: ImageEncoder) -> None:
    chat = FakeChat(LLMReport(findings="Large pneumonia.", impression="Pneumonia."))
    draft = draft_report(photo_like_png(), "", encoder=cxr_encoder, chat_model=chat, report_bank=None)
    assert not draft.in_scope and draft.image_findings == []
    assert draft.findings.startswith("Not assessed") and draft.generated_by == "template"
    assert chat.prompts == []  # nothing grounded to write from: the LLM is not asked


def test_llm_sentences_about_unassessed_findings_are_removed(
    cxr_encoder: ImageEncoder, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    chat = FakeChat(
        LLMReport(
            findings="Right lower lobe pneumonia. Mild cardiomegaly. No pleural effusion.",
            impression="Pneumonia.",
        )
    )
    draft = draft_report(
        _pneumonia(kermany_fixtures), "Fever", encoder=cxr_encoder, chat_model=chat, report_bank=None
    )
    assert "cardiomegaly" not in draft.findings.lower() and "effusion" not in draft.findings.lower()
    assert "pneumonia" in draft.findings.lower()
    assert any("does not assess" in note for note in draft.validation_notes)


@pytest.mark.parametrize(
    "text",
    [
        "Lung lesion: Lung lesion: Lung lesion: present.",
        "There is consolidation. There is consolidation.",
        "FINDINGS: clear lungs.",
        "Consolidation. TECHNIQUE: PA view.",
        "no no no no focal opacity",
    ],
)
def test_degenerate_text_is_detected(text: str) -> None:
    assert degenerate_reason(text)


def test_repeated_phrases_are_refused_in_llm_text_only() -> None:
    loop = "the right lower lobe shows a patchy opacity and the right lower lobe shows a patchy opacity"
    assert degenerate_reason(loop, strict=True)
    assert degenerate_reason(loop) is None  # templates may repeat a phrase


@pytest.mark.parametrize(
    "text",
    [
        "Appearance suggestive of pneumonia on automated analysis (probability 91%); the pattern "
        "favours bacterial over viral (80% bacterial).",
        "No pneumonia on automated analysis (probability of pneumonia 3%).",
        "Heart size is normal. The lungs are clear. No pleural effusion or pneumothorax.",
    ],
)
def test_ordinary_text_passes(text: str) -> None:
    assert degenerate_reason(text) is None


def test_degenerate_llm_reply_falls_back_to_the_template(
    cxr_encoder: ImageEncoder, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    chat = FakeChat(
        LLMReport(findings="Lung lesion: Lung lesion: Lung lesion: Lung lesion:", impression="Pneumonia.")
    )
    draft = draft_report(
        _pneumonia(kermany_fixtures), "Fever", encoder=cxr_encoder, chat_model=chat, report_bank=None
    )
    assert draft.generated_by == "template"
    assert "Lung lesion:" not in draft.text
    assert any("degenerate" in note for note in draft.validation_notes)


def test_degenerate_edit_cannot_become_a_draft(
    cxr_encoder: ImageEncoder, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    draft = draft_report(
        _pneumonia(kermany_fixtures), "Fever", encoder=cxr_encoder, chat_model=None, report_bank=None
    )
    edited = {**draft.model_dump(mode="json"), "findings": "Lung lesion: Lung lesion: nodule."}
    with pytest.raises(ValidationError, match="degenerate FINDINGS"):
        ReportDraft.model_validate(edited)


def test_ui_refuses_a_degenerate_edit_before_export() -> None:
    import gradio as gr

    from ui.web.reports import edited_draft

    class NoRevise:
        def revise(self, *args: object, **kwargs: object) -> None:  # pragma: no cover - never reached
            raise AssertionError("a degenerate edit must not reach the report service")

    edited = "FINDINGS:\nLung lesion: Lung lesion: nodule.\n\nIMPRESSION:\nLesion.\n"
    with pytest.raises(gr.Error, match="repeated phrase"):
        edited_draft({}, edited, NoRevise())  # type: ignore[arg-type]
