"""Rendering of consultation results for the web UI, and the editable report text."""

from __future__ import annotations

import re
from html import escape, unescape
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.contracts import FollowUp, ImageFinding, TurnResult
from kg.models import FindingLink, RankedDisease
from retrieval.base import Passage
from tests.fixtures.ui import FakeDraft, FakeReportService
from ui.web.render import assistant_message, differential_html, evidence_html, follow_up_markdown, urgent_html
from ui.web.reports import draft_text, edited_draft, split_sections


def disease(name: str, p: float, **kw: Any) -> RankedDisease:
    return RankedDisease(disease_id=name.lower(), name=name, probability=p, log_score=0.0, **kw)


def test_chart_has_one_bar_per_candidate_scaled_by_probability() -> None:
    html = differential_html([disease("Flu", 0.75), disease("Cold", 0.25, severe=True)])
    assert html.count('class="ddx-row') == 2
    assert 'style="width:75.0%"' in html and 'style="width:25.0%"' in html
    assert "ddx-severe" in html and "serious" in _text(html) and "red: a serious condition" in _text(html)
    assert "cannot be excluded" not in html
    assert "ddx-empty" in differential_html([])


def test_names_from_data_are_escaped() -> None:
    evil = disease('<img src=x onerror="alert(1)">', 1.0)
    html = differential_html([evil])
    assert "<img" not in html and "&lt;img" in html
    result = TurnResult(session_id="s", status="answered", message="", differential=[evil])
    assert "<img" not in evidence_html(result)
    urgent = TurnResult(session_id="s", status="urgent", message="", urgent=True, urgent_reasons=["<b>x</b>"])
    assert "<b>x</b>" not in urgent_html(urgent)


CYPHER = (
    "(:Disease {name: 'Viral pharyngitis'})-[:HAS_FINDING {p: 0.90, source: 'ddxplus-train-stats'}]->"
    "(:Finding {id: 'E_55_@_V_148', name: 'pain location: pharynx'})"
)


def test_evidence_reads_like_a_note_with_the_graph_path_one_click_away() -> None:
    pharynx = FindingLink(
        finding_id="E_55_@_V_148",
        finding_name="pain location: pharynx",
        p=0.8994,
        present=True,
        source="ddxplus-train-stats",
        path=CYPHER,
    )
    # The answer itself ("pain location" = V_148) is a code: its value's link says it in words.
    answer = FindingLink(
        finding_id="E_55", finding_name="pain location", p=0.99, present=True, value="V_148", path="raw"
    )
    no_fever = FindingLink(finding_id="E_91", finding_name="fever", p=0.49, present=False, source="symcat")
    result = TurnResult(
        session_id="s",
        status="answered",
        message="",
        differential=[
            disease("Viral pharyngitis", 0.9, supporting=[answer, pharynx], contradicting=[no_fever]),
            disease("Epiglottitis", 0.05, severe=True, cannot_exclude=True),
        ],
        passages=[
            Passage(id="p", text="Flu is viral.", title="Influenza", url="https://medlineplus.gov/flu")
        ],
    )
    html = evidence_html(result)
    text = _text(html)
    assert (
        "pain location: pharynx — typical (90% of patients with Viral pharyngitis)"
        " · source: DDXPlus training statistics"
    ) in text
    assert (
        "no fever — yet common: 49% of patients with Viral pharyngitis have it · source: SymCat survey"
        in text
    )
    assert "V_148" not in text.split("Graph paths")[0]  # codes stay out of the sentences
    # The raw path: a tooltip on the line and a collapsed <details> under the disease.
    assert f'title="{escape(CYPHER)}"' in html
    details = html[html.index("<details") : html.index("</details>")]
    assert "<summary>Graph paths (3)</summary>" in details and escape(CYPHER) in details
    assert "<details open" not in html
    assert "Epiglottitis 5% serious cannot be excluded yet" in text
    assert '<a href="https://medlineplus.gov/flu"' in html
    assert "Evidence appears here" in evidence_html(None)


def test_evidence_panel_keeps_a_serious_condition_that_cannot_be_excluded() -> None:
    many = [disease(f"D{i}", 0.1) for i in range(9)] + [
        disease("Aortic dissection", 0.02, cannot_exclude=True)
    ]
    result = TurnResult(session_id="s", status="asking", message="", differential=many)
    assert "Aortic dissection" in evidence_html(result) and "D6" not in evidence_html(result)
    chart = differential_html(many)
    assert chart.count('class="ddx-row') == 9 and 'data-cannot-exclude="true"' in chart
    assert "cannot be excluded yet" in chart


def test_image_findings_in_the_evidence() -> None:
    result = TurnResult(
        session_id="s",
        status="asking",
        message="",
        image_findings=[ImageFinding(label="<b>effusion</b>", probability=0.7)],
    )
    html = evidence_html(result)
    assert "Image findings" in html and "&lt;b&gt;effusion&lt;/b&gt;: 70%" in html


def test_next_steps_and_disclaimer_are_not_said_twice() -> None:
    final = TurnResult(
        session_id="s",
        status="answered",
        message="Flu is likely.\n\n**Next steps**:\n- Rest.\n\n_Not a diagnosis._",
        next_steps=["Rest."],
        disclaimer="Not a diagnosis.",
    )
    assert assistant_message(final).count("Next steps") == 1
    assert assistant_message(final).count("Not a diagnosis.") == 1
    short = final.model_copy(update={"message": "Flu is likely."})
    assert "**Next steps**\n- Rest." in assistant_message(
        short
    ) and "_Not a diagnosis._" in assistant_message(short)


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


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
