"""The report draft as editable text, and the edited text back into a draft (for FHIR export)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from ui.services import ReportService

_SECTION = re.compile(r"^\s*(FINDINGS|IMPRESSION)\s*:\s*$", re.IGNORECASE | re.MULTILINE)


def draft_text(draft: BaseModel) -> str:
    findings = str(getattr(draft, "findings", "") or "").strip()
    impression = str(getattr(draft, "impression", "") or "").strip()
    return f"FINDINGS:\n{findings}\n\nIMPRESSION:\n{impression}\n"


def split_sections(text: str) -> tuple[str, str]:
    """FINDINGS and IMPRESSION from the edited text; text without headings is all findings."""
    sections: dict[str, str] = {}
    matches = list(_SECTION.finditer(text))
    if not matches:
        return text.strip(), ""
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        sections[match.group(1).upper()] = text[match.end() : end].strip()
    return sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")


def edited_draft(draft: dict[str, Any], edited: str, reports: ReportService) -> BaseModel:
    """The edited text as a draft; degenerate text (a repeated phrase, a stray heading) is refused
    with the reason shown to the user, so it never reaches the FHIR export."""
    from assistant.reports import degenerate_reason

    findings, impression = split_sections(edited or "")
    for name, text in (("FINDINGS", findings), ("IMPRESSION", impression)):
        reason = degenerate_reason(text)
        if reason:
            import gradio as gr

            raise gr.Error(f"The {name} section cannot be exported: {reason}.")
    return reports.revise(draft, findings=findings, impression=impression)
