"""Rendering of consultation results for the web UI, and the editable report text."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.contracts import FollowUp, TurnResult
from kg.models import FindingLink, RankedDisease
from retrieval.base import Passage
from tests.fixtures.ui import FakeDraft, FakeReportService
from ui.web.render import differential_html, evidence_markdown, follow_up_markdown, urgent_html
from ui.web.reports import draft_text, edited_draft, split_sections


def disease(name: str, p: float, **kw: Any) -> RankedDisease:
    return RankedDisease(disease_id=name.lower(), name=name, probability=p, log_score=0.0, **kw)


def test_chart_has_one_bar_per_candidate_scaled_by_probability() -> None:
    html = differential_html([disease("Flu", 0.75), disease("Cold", 0.25, severe=True)])
    assert html.count('class="ddx-row') == 2
    assert 'style="width:75.0%"' in html and 'style="width:25.0%"' in html
    assert "ddx-severe" in html
    assert "ddx-empty" in differential_html([])


def test_names_from_data_are_escaped() -> None:
    evil = disease('<img src=x onerror="alert(1)">', 1.0)
    html = differential_html([evil])
    assert "<img" not in html and "&lt;img" in html
    result = TurnResult(session_id="s", status="answered", message="", differential=[evil])
    assert "<img" not in evidence_markdown(result)
    urgent = TurnResult(session_id="s", status="urgent", message="", urgent=True, urgent_reasons=["<b>x</b>"])
    assert "<b>x</b>" not in urgent_html(urgent)


def test_evidence_lists_for_against_and_sources() -> None:
    link = FindingLink(
        finding_id="f", finding_name="fever", p=0.8, present=True, path="Flu-HAS_FINDING->fever"
    )
    against = FindingLink(finding_id="r", finding_name="rash", p=0.6, present=False)
    result = TurnResult(
        session_id="s",
        status="answered",
        message="",
        differential=[disease("Flu", 0.9, supporting=[link], contradicting=[against])],
        passages=[
            Passage(id="p", text="Flu is viral.", title="Influenza", url="https://medlineplus.gov/flu")
        ],
    )
    text = evidence_markdown(result)
    assert "fever (present, p=0.80)" in text and "HAS\\_FINDING" in text
    assert "rash (absent, p=0.60)" in text
    assert "[Influenza](https://medlineplus.gov/flu)" in text


def test_follow_up_and_urgent_banner() -> None:
    assert follow_up_markdown(None) == ""
    assert "Do you smoke?" in follow_up_markdown(
        FollowUp(finding_id="f", text="Do you smoke?", graph_text="x")
    )
    calm = TurnResult(session_id="s", status="asking", message="")
    assert urgent_html(calm) == ""
    urgent = TurnResult(
        session_id="s", status="urgent", message="", urgent=True, urgent_reasons=["chest pain"]
    )
    assert "urgent" in urgent_html(urgent).lower() and "chest pain" in urgent_html(urgent)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FINDINGS:\nClear lungs.\n\nIMPRESSION:\nNormal.", ("Clear lungs.", "Normal.")),
        ("impression:\nNormal.\nfindings:\nClear.", ("Clear.", "Normal.")),
        ("Just free text.", ("Just free text.", "")),
    ],
)
def test_report_sections_round_trip(text: str, expected: tuple[str, str]) -> None:
    assert split_sections(text) == expected


def test_edited_draft_keeps_other_fields() -> None:
    draft = FakeDraft(findings="a", impression="b", indication="cough")
    assert split_sections(draft_text(draft)) == ("a", "b")
    revised = edited_draft(draft.model_dump(), "FINDINGS:\nnew\nIMPRESSION:\nbetter", FakeReportService())
    assert isinstance(revised, FakeDraft)
    assert (revised.findings, revised.impression, revised.indication) == ("new", "better", "cough")


def test_serve_says_clearly_when_the_port_is_taken() -> None:
    import socket

    from ui.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code != 0
    assert f"127.0.0.1:{port}" in result.output and "another port" in result.output
