"""The HTTP API with vision on by default: /v1/reports drafts from an image, /v1/images/questions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.llm.base import LLMError
from assistant.reports import LLMReport
from assistant.settings import Settings
from tests.fixtures.ui import FakeConsultation
from tests.fixtures.vlm import photo_like_png
from tests.vlm.test_reports import FakeChat


def _default_report_service(settings: Settings, chat_model: Any) -> Any:
    """The report service as the app builds it: the encoder the default settings name."""
    from ui.reporting import DraftReportService
    from vlm import ReportBank, try_create_encoder

    encoder, reason = try_create_encoder(settings.vision.model, architecture=settings.vision.architecture)
    assert encoder is not None, reason
    bank = ReportBank.build_or_load(encoder, settings.data_dir / "cache", limit=200)
    return DraftReportService(encoder, chat_model, settings, report_bank=bank)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from ui.server import create_app

    settings = Settings(data_dir=tmp_path)  # defaults: MEDKG_VISION__MODEL unset
    chat = FakeChat(LLMError("no LLM in this test"))
    app = create_app(
        settings,
        consultation=FakeConsultation(),
        report_service=_default_report_service(settings, chat),
        with_ui=False,
    )
    with TestClient(app) as test_client:
        yield test_client


def _upload(path: Path) -> dict[str, Any]:
    return {"image": (path.name, path.read_bytes(), "image/jpeg")}


def _pneumonia(kermany_fixtures: list[tuple[Path, str]]) -> Path:
    return next(p for p, label in kermany_fixtures if label == "bacterial")


def test_report_from_an_image_with_default_settings(
    client: TestClient, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    reply = client.post(
        "/v1/reports", files=_upload(_pneumonia(kermany_fixtures)), data={"indication": "fever"}
    )
    assert reply.status_code == 200, reply.text
    draft = reply.json()
    assert draft["encoder_model"] == "medkg-cxr" and draft["in_scope"]
    assert "pneumonia" in draft["impression"].lower()
    assert "Model reach:" in draft["text"]
    fhir = client.post("/v1/reports?format=fhir", files=_upload(_pneumonia(kermany_fixtures)))
    assert fhir.status_code == 200 and fhir.json()["resourceType"] == "DiagnosticReport"


def test_report_for_an_unlike_image_says_out_of_scope(client: TestClient) -> None:
    reply = client.post("/v1/reports", files={"image": ("photo.png", photo_like_png(), "image/png")})
    assert reply.status_code == 200
    assert not reply.json()["in_scope"] and reply.json()["image_findings"] == []


def test_image_questions_endpoint(client: TestClient, kermany_fixtures: list[tuple[Path, str]]) -> None:
    image = _upload(_pneumonia(kermany_fixtures))
    yes = client.post("/v1/images/questions", files=image, data={"question": "Is there pneumonia?"})
    assert yes.status_code == 200, yes.text
    assert yes.json()["verdict"] == "likely present" and yes.json()["probability"] >= 0.5
    other = client.post("/v1/images/questions", files=image, data={"question": "Is there cardiomegaly?"})
    assert other.json()["verdict"] == "not assessed" and other.json()["probability"] is None
    photo = client.post(
        "/v1/images/questions",
        files={"image": ("p.png", photo_like_png(), "image/png")},
        data={"question": "Is there pneumonia?"},
    )
    assert photo.json()["verdict"] == "out of scope"
    missing = client.post("/v1/images/questions", files=image, data={"question": ""})
    assert missing.status_code == 422
    text = client.post(
        "/v1/images/questions", files={"image": ("a.txt", b"hello", "text/plain")}, data={"question": "x?"}
    )
    assert text.status_code == 415


def test_degenerate_llm_draft_never_reaches_the_api(
    tmp_path: Path, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    from ui.server import create_app

    settings = Settings(data_dir=tmp_path)
    chat = FakeChat(LLMReport(findings="Lung lesion: Lung lesion: Lung lesion:", impression="Lesion."))
    app = create_app(
        settings,
        consultation=FakeConsultation(),
        report_service=_default_report_service(settings, chat),
        with_ui=False,
    )
    with TestClient(app) as client:
        reply = client.post("/v1/reports", files=_upload(_pneumonia(kermany_fixtures)))
        assert reply.status_code == 200
        assert "Lung lesion:" not in reply.json()["text"]
        assert reply.json()["generated_by"] == "template"


@pytest.mark.integration
def test_report_api_on_a_real_server_with_the_embedded_llm(
    live_settings_llm_only: Settings, kermany_fixtures: list[tuple[Path, str]]
) -> None:
    """A real uvicorn server, the embedded llama.cpp LLM, the default (shipped) image model."""
    import httpx

    from assistant.llm import create_chat_model
    from ui.server import BackgroundServer, create_app

    chat = create_chat_model(live_settings_llm_only.llm)
    app = create_app(
        live_settings_llm_only,
        consultation=FakeConsultation(),
        report_service=_default_report_service(live_settings_llm_only, chat),
    )
    with BackgroundServer(app) as server:
        reply = httpx.post(
            f"{server.url}/v1/reports",
            files=_upload(_pneumonia(kermany_fixtures)),
            data={"indication": "fever and cough"},
            timeout=600,
        )
    assert reply.status_code == 200, reply.text
    draft = reply.json()
    assert draft["encoder_model"] == "medkg-cxr" and "Model reach:" in draft["text"]
    assert draft["generated_by"] in {"llm", "llm+template", "template"}
