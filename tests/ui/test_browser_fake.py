"""The web UI in headless Chromium over the fake services: the UI logic, fast and deterministic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.fixtures.ui import FakeConsultation, FakeReportService, LiveServer, png_bytes
from ui.server import create_app

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def consultation() -> FakeConsultation:
    return FakeConsultation()


@pytest.fixture(scope="module")
def fake_server(
    tmp_path_factory: pytest.TempPathFactory, consultation: FakeConsultation
) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-fake"))
    app = create_app(settings, consultation=consultation, report_service=FakeReportService())
    with LiveServer(app) as server:
        yield server


class SlowConsultation(FakeConsultation):
    """Turns that take long enough to watch the progress indicator."""

    def start(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(2.0)
        return super().start(*args, **kwargs)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-slow"))
    app = create_app(settings, consultation=SlowConsultation(), report_service=FakeReportService())
    with LiveServer(app) as server:
        yield server


def chart_values(page: Any) -> list[tuple[str, str]]:
    rows = page.locator("#differential-chart .ddx-row")
    return [
        (rows.nth(i).get_attribute("data-disease") or "", rows.nth(i).get_attribute("data-probability") or "")
        for i in range(rows.count())
    ]


def age_box(page: Any) -> Any:
    return page.locator("#age input")


def send(page: Any, text: str) -> None:
    page.locator("#chat-input textarea").fill(text)
    page.locator("#chat-input textarea").press("Enter")


def test_quick_answer_updates_chart_and_evidence(
    page: Any, fake_server: LiveServer, artifacts_dir: Path
) -> None:
    page.goto(fake_server.url, timeout=TIMEOUT_MS)
    page.locator("#differential-chart .ddx-empty").wait_for(timeout=TIMEOUT_MS)
    assert age_box(page).input_value() == "" and age_box(page).get_attribute("placeholder") == "unknown"
    send(page, "I am a 34 year old woman and I have had a fever and a cough for three days")

    page.locator("#follow-up").get_by_text("Do you have a fever?").wait_for(timeout=TIMEOUT_MS)
    before = chart_values(page)
    assert len(before) == 4
    # The age and sex the patient wrote fill the boxes, read-only for this session.
    page.wait_for_function("() => document.querySelector('#age input').value === '34'", timeout=TIMEOUT_MS)
    assert age_box(page).is_disabled()
    assert page.locator("#sex input[value=F]").is_checked()
    # Evidence in words; the graph path one click away.
    evidence = page.locator("#evidence")
    assert "Influenza" in evidence.inner_text()
    line = evidence.locator("li", has_text="fever — common (70% of patients with Influenza)").first
    assert "source: DDXPlus training statistics" in line.inner_text()
    assert "no rash — yet common: 40% of patients with Influenza have it" in evidence.inner_text()
    assert "HAS_FINDING" in (line.get_attribute("title") or "")
    path = evidence.locator("details code", has_text="name: 'Influenza'").first
    assert not path.is_visible()
    path.locator("xpath=ancestor::details/summary").click()
    assert path.is_visible()
    # A serious condition still >= 1% likely is flagged on the chart and in the evidence.
    flagged = page.locator("#differential-chart .ddx-row[data-cannot-exclude=true]")
    assert flagged.count() == 1 and "cannot be excluded yet" in flagged.inner_text()
    assert "Pulmonary embolism" in flagged.inner_text()

    page.locator("#answer-yes >> visible=true").first.click()
    page.locator("#follow-up").get_by_text("Are you short of breath?").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function(
        "before => JSON.stringify([...document.querySelectorAll('#differential-chart .ddx-row')]"
        ".map(r => [r.dataset.disease, r.dataset.probability])) !== before",
        arg=str(before).replace("(", "[").replace(")", "]").replace("'", '"'),
        timeout=TIMEOUT_MS,
    )
    after = chart_values(page)
    assert after != before
    assert page.locator("#chat").get_by_text("Yes", exact=True).count() >= 1
    assert age_box(page).input_value() == "34"
    page.screenshot(path=str(artifacts_dir / "ui-consultation-fake.png"), full_page=True)

    page.locator("#new-session").click()
    page.locator("#differential-chart .ddx-empty").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#follow-up-box >> visible=true").count() == 0
    page.wait_for_function("() => !document.querySelector('#age input').disabled", timeout=TIMEOUT_MS)
    assert age_box(page).input_value() == ""
    assert not page.locator("#sex input[value=F]").is_checked()


def test_zero_in_the_age_box_is_a_newborn(
    page: Any, fake_server: LiveServer, consultation: FakeConsultation
) -> None:
    page.goto(fake_server.url, timeout=TIMEOUT_MS)
    page.locator("#differential-chart .ddx-empty").wait_for(timeout=TIMEOUT_MS)
    before = set(consultation._sessions)
    age_box(page).fill("0")
    send(page, "fever and not feeding well")
    page.locator("#follow-up").get_by_text("Do you have a fever?").wait_for(timeout=TIMEOUT_MS)
    (opened,) = set(consultation._sessions) - before
    assert consultation.state(opened).age == 0  # not None: the box sent 0
    assert age_box(page).input_value() == "0"


def test_one_progress_indicator_per_turn(page: Any, slow_server: LiveServer) -> None:
    page.goto(slow_server.url, timeout=TIMEOUT_MS)
    page.locator("#differential-chart .ddx-empty").wait_for(timeout=TIMEOUT_MS)
    send(page, "I have a fever")
    page.locator(".progress-text >> visible=true").first.wait_for(timeout=TIMEOUT_MS)
    shown = page.evaluate(
        "() => [...document.querySelectorAll('.progress-text, .progress-bar')]"
        ".filter(e => e.offsetParent !== null).map(e => e.closest('[id]')?.id)"
    )
    assert shown and set(shown) == {"chat"}, shown
    page.locator("#follow-up").get_by_text("Do you have a fever?").wait_for(timeout=TIMEOUT_MS)


def test_report_tab_drafts_and_exports_fhir(page: Any, fake_server: LiveServer, tmp_path: Path) -> None:
    image = tmp_path / "chest.png"
    image.write_bytes(png_bytes())
    page.goto(fake_server.url, timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Report draft").click()
    page.locator("#report-image input[type=file]").set_input_files(str(image))
    page.locator("#report-indication textarea").fill("Cough for two weeks")
    page.locator("#report-draft-button").click()
    draft = page.locator("#report-draft textarea")
    page.wait_for_function(
        "() => document.querySelector('#report-draft textarea').value.includes('IMPRESSION')",
        timeout=TIMEOUT_MS,
    )
    assert "The lungs are clear." in draft.input_value()
    draft.fill("FINDINGS:\nSmall left effusion.\n\nIMPRESSION:\nEffusion.")
    page.locator("#report-fhir-button").click()
    link = page.locator("#report-fhir-file a").first
    link.wait_for(timeout=TIMEOUT_MS)
    with page.expect_download() as download_info:
        link.click()
    fhir = Path(download_info.value.path()).read_text()
    assert '"DiagnosticReport"' in fhir and "Effusion." in fhir
