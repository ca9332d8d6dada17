"""The app over the real stack (embedded LLM + full graph + FAISS retriever + tiny encoder):
the HTTP API end to end, and the web UI in headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.ui import LiveServer, png_bytes

# Setup loads the full graph, a FAISS index and a tiny CLIP; each turn calls the real LLM.
# On 2 shared cores that is minutes, hence the longer per-test limit.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

OPENING = "I have had a fever, a cough and a sore throat for three days"
TIMEOUT_MS = 180_000  # a turn on 2 shared cores with a real LLM


@pytest.fixture(scope="module")
def live_client(live_ui_app: Any) -> Any:
    with TestClient(live_ui_app) as client:
        yield client


def test_api_consultation_on_real_stack(live_client: TestClient) -> None:
    opened = live_client.post("/v1/consultations", json={"message": OPENING, "age": 30, "sex": "F"})
    assert opened.status_code == 201, opened.text
    first = opened.json()
    session = first["session_id"]
    assert first["differential"], "the graph ranks candidates from the opening message"
    probabilities = [d["probability"] for d in first["differential"]]
    assert all(0.0 <= p <= 1.0 for p in probabilities) and sum(probabilities) <= 1.0 + 1e-6
    assert probabilities == sorted(probabilities, reverse=True)

    if first["follow_up"] is not None:
        answered = live_client.post(f"/v1/consultations/{session}/messages", json={"answer": "No"})
        assert answered.status_code == 200, answered.text
        assert answered.json()["questions_asked"] >= 1
    more = live_client.post(f"/v1/consultations/{session}/messages", json={"text": "I also have a headache"})
    assert more.status_code == 200, more.text

    state = live_client.get(f"/v1/consultations/{session}").json()
    patient = [e["text"] for e in state["transcript"] if e["role"] == "patient"]
    assert patient[0] == OPENING and patient[-1] == "I also have a headache"
    assert state["age"] == 30


def test_api_report_on_real_stack(live_client: TestClient) -> None:
    files = {"image": ("chest.png", png_bytes(), "image/png")}
    draft = live_client.post("/v1/reports", files=files, data={"indication": "cough"})
    assert draft.status_code == 200, draft.text
    body = draft.json()
    assert body["findings"] and body["impression"] and body["indication"] == "cough"
    fhir = live_client.post("/v1/reports?format=fhir", files=files, data={"indication": "cough"})
    assert fhir.status_code == 200
    assert fhir.json()["resourceType"] == "DiagnosticReport"
    not_image = {"image": ("x.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "image/png")}
    broken = live_client.post("/v1/reports", files=not_image)
    assert broken.status_code == 422 and broken.headers["content-type"].startswith("application/problem+json")


def test_healthz_on_real_stack(live_client: TestClient) -> None:
    body = live_client.get("/healthz").json()
    assert body["components"]["llm"]["status"] == "ok"
    assert body["components"]["graph"]["status"] == "ok"
    assert body["components"]["retriever"]["status"] == "ok"
    assert body["components"]["vision"]["status"] == "ok"
    assert body["status"] == "ok"


CHART_SIGNATURE = (
    "() => JSON.stringify([...document.querySelectorAll('#differential-chart .ddx-row')]"
    ".map(r => [r.dataset.disease, r.dataset.probability]))"
)


@pytest.mark.browser
def test_browser_consultation_with_quick_answer(
    page: Any, live_ui_server: LiveServer, artifacts_dir: Path
) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_ui_server.url)
    page.locator("#age input").fill("30")
    page.locator("#chat-input textarea").fill(OPENING)
    page.locator("#chat-input textarea").press("Enter")
    page.locator("#differential-chart .ddx-row").first.wait_for()
    assert page.locator("#differential-chart .ddx-row").count() >= 2
    page.locator("#follow-up-box >> visible=true").first.wait_for()
    question = page.locator("#follow-up >> visible=true").first.inner_text()
    assert question.strip()
    before = page.evaluate(CHART_SIGNATURE)

    page.locator("#answer-yes >> visible=true").first.click()
    # The rows' data attributes change only when the new differential is rendered (the
    # progress overlay shown meanwhile leaves them alone).
    page.wait_for_function(f"before => ({CHART_SIGNATURE})() !== before", arg=before)
    assert page.evaluate(CHART_SIGNATURE) != before, "answering the question moves the posterior"
    page.screenshot(path=str(artifacts_dir / "ui-consultation.png"), full_page=True)


@pytest.mark.browser
def test_browser_report_draft(
    page: Any, live_report_server: LiveServer, artifacts_dir: Path, tmp_path: Path
) -> None:
    image = tmp_path / "chest.png"
    image.write_bytes(png_bytes(size=128, seed=3))
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(live_report_server.url)
    page.get_by_role("tab", name="Report draft").click()
    page.locator("#report-image input[type=file]").set_input_files(str(image))
    page.locator("#report-indication textarea").fill("Cough and fever for two weeks")
    page.locator("#report-draft-button").click()
    page.wait_for_function(
        "() => document.querySelector('#report-draft textarea').value.includes('IMPRESSION:')"
    )
    text = page.locator("#report-draft textarea").input_value()
    findings = text.split("IMPRESSION:")[0].replace("FINDINGS:", "").strip()
    assert findings, "the draft has a findings section"
    page.locator("#report-fhir-button").click()
    page.locator("#report-fhir-file a").first.wait_for()
    page.screenshot(path=str(artifacts_dir / "ui-report.png"), full_page=True)


KERMANY = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "images" / "kermany"


@pytest.fixture(scope="module")
def shipped_model_server(live_settings_llm_only: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The report side as a fresh install has it: the shipped medkg-cxr model (default
    settings.vision.model), the embedded LLM, the IU X-ray report bank."""
    from assistant.app import App
    from assistant.imaging import load_image_analyzer
    from assistant.llm import create_chat_model
    from tests.fixtures.ui import FakeConsultation
    from ui.reporting import report_service_for
    from ui.server import create_app

    settings = live_settings_llm_only.model_copy(update={"data_dir": tmp_path_factory.mktemp("shipped")})
    analyzer, reason = load_image_analyzer(settings)
    assert analyzer is not None, reason
    assembled = App(settings=settings, chat_model=create_chat_model(settings.llm), image_analyzer=analyzer)
    app = create_app(settings, consultation=FakeConsultation(), report_service=report_service_for(assembled))
    with LiveServer(app) as server:
        yield server


@pytest.mark.browser
def test_browser_report_draft_with_the_shipped_model(
    page: Any, shipped_model_server: LiveServer, artifacts_dir: Path
) -> None:
    """A pediatric pneumonia film (Kermany training split, CC BY 4.0) drafted on a fresh install's
    defaults; the screenshot is the one docs/ shows."""
    image = KERMANY / "PNEUMONIA" / "person1000_bacteria_2931.jpeg"
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(shipped_model_server.url)
    page.get_by_role("tab", name="Report draft").click()
    page.locator("#report-image input[type=file]").set_input_files(str(image))
    page.locator("#report-indication textarea").fill("Fever and cough for four days, 3-year-old")
    page.locator("#report-draft-button").click()
    page.wait_for_function(
        "() => document.querySelector('#report-draft textarea').value.includes('IMPRESSION:')"
    )
    text = page.locator("#report-draft textarea").input_value()
    assert "pneumonia" in text.lower(), text
    assert "pediatric frontal chest X-rays" in page.locator("#report-reach").inner_text()
    page.wait_for_timeout(1500)  # Gradio fades outputs until the whole event settles
    page.screenshot(path=str(artifacts_dir / "ui-report-medkg-cxr.png"), full_page=True)
