"""The web UI in headless Chromium over the fake services: the UI logic, fast and deterministic."""

from __future__ import annotations

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
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-fake"))
    app = create_app(settings, consultation=FakeConsultation(), report_service=FakeReportService())
    with LiveServer(app) as server:
        yield server


def chart_values(page: Any) -> list[tuple[str, str]]:
    rows = page.locator("#differential-chart .ddx-row")
    return [
        (rows.nth(i).get_attribute("data-disease") or "", rows.nth(i).get_attribute("data-probability") or "")
        for i in range(rows.count())
    ]


def test_quick_answer_updates_chart_and_evidence(
    page: Any, fake_server: LiveServer, artifacts_dir: Path
) -> None:
    page.goto(fake_server.url, timeout=TIMEOUT_MS)
    page.locator("#differential-chart .ddx-empty").wait_for(timeout=TIMEOUT_MS)
    page.locator("#chat-input textarea").fill("I have had a fever and a cough for three days")
    page.locator("#chat-input textarea").press("Enter")

    page.locator("#follow-up").get_by_text("Do you have a fever?").wait_for(timeout=TIMEOUT_MS)
    before = chart_values(page)
    assert len(before) == 4
    assert "Influenza" in page.locator("#evidence").inner_text()

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
    page.screenshot(path=str(artifacts_dir / "ui-consultation-fake.png"), full_page=True)

    page.locator("#new-session").click()
    page.locator("#differential-chart .ddx-empty").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#follow-up-box >> visible=true").count() == 0


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
