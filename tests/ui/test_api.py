"""The HTTP API over fake services: every endpoint, auth, limits and problem+json errors."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.settings import ServerSettings, Settings
from tests.fixtures.ui import TINY_PNG, FakeConsultation
from ui.health import static_probe
from ui.services import ComponentHealth

PROBLEM = "application/problem+json"
KEY = "s3cret-key-for-tests"
PATIENT_TEXT = "my private symptom is a purple rash"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    return body


@pytest.fixture
def client(api_app_factory: Any, ui_settings: Settings) -> Iterator[TestClient]:
    with TestClient(api_app_factory(ui_settings)) as test_client:
        yield test_client


@pytest.fixture
def keyed_client(api_app_factory: Any, ui_settings: Settings) -> Iterator[TestClient]:
    settings = ui_settings.model_copy(update={"server": ServerSettings(api_keys=[SecretStr(KEY)])})
    with TestClient(api_app_factory(settings)) as test_client:
        yield test_client


def start(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/consultations", json={"message": "fever and cough", **body})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# --- consultations -----------------------------------------------------------------------


def test_consultation_round_trip(client: TestClient) -> None:
    opened = start(client, age=34, sex="F")
    session = opened["session_id"]
    assert opened["follow_up"]["choices"] == ["Yes", "No", "Don't know"]
    first_top = opened["differential"][0]["name"]

    answered = client.post(f"/v1/consultations/{session}/messages", json={"answer": "Yes"})
    assert answered.status_code == 200
    assert answered.json()["questions_asked"] == 1
    assert (
        answered.json()["differential"][0]["name"] != first_top or len(answered.json()["differential"]) == 1
    )

    text = client.post(f"/v1/consultations/{session}/messages", json={"text": "also a headache"})
    assert text.status_code == 200

    state = client.get(f"/v1/consultations/{session}")
    assert state.status_code == 200
    body = state.json()
    assert body["age"] == 34 and body["sex"] == "F"
    patient_lines = [e["text"] for e in body["transcript"] if e["role"] == "patient"]
    assert patient_lines == ["fever and cough", "Yes", "also a headache"]


def test_start_without_message_and_with_image(
    client: TestClient, fake_consultation: FakeConsultation
) -> None:
    assert client.post("/v1/consultations", json={}).status_code == 201
    image = base64.b64encode(TINY_PNG).decode()
    opened = client.post("/v1/consultations", json={"message": "chest pain", "image_base64": image})
    assert opened.status_code == 201
    assert fake_consultation.images[opened.json()["session_id"]] == len(TINY_PNG)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"message": ""}, 422),
        ({"message": "   "}, 422),
        ({"message": "x" * 4001}, 422),
        ({"message": "hi", "age": -1}, 422),
        ({"message": "hi", "age": 131}, 422),
        ({"message": "hi", "age": False}, 422),
        ({"message": "hi", "age": True}, 422),
        ({"message": "hi", "age": "34"}, 422),
        ({"message": "hi", "age": 34.5}, 422),
        ({"message": "hi", "sex": "X"}, 422),
        ({"message": "hi", "unexpected": 1}, 422),
        ({"message": 12}, 422),
        ({"message": "hi", "image_base64": "not base64!!"}, 422),
        ({"message": "hi", "image_base64": base64.b64encode(b"plain text").decode()}, 415),
        ([1, 2], 422),
    ],
)
def test_start_rejects_bad_input(client: TestClient, body: Any, status: int) -> None:
    body_json = assert_problem(client.post("/v1/consultations", json=body), status)
    if status == 422:
        assert body_json["errors"], "validation problems name the failing fields"


def test_age_must_be_a_json_integer() -> None:
    from pydantic import ValidationError

    from ui.api.models import ConsultationCreate

    assert ConsultationCreate.model_validate_json('{"age": 0}').age == 0  # a newborn is a real age
    assert ConsultationCreate.model_validate_json('{"age": 34}').age == 34
    assert ConsultationCreate.model_validate_json('{"age": null}').age is None
    for raw in ('{"age": false}', '{"age": true}', '{"age": "34"}', '{"age": 1.5}'):
        with pytest.raises(ValidationError, match="age"):
            ConsultationCreate.model_validate_json(raw)
    with pytest.raises(ValidationError, match="age"):
        ConsultationCreate(age=False)


def test_age_zero_is_accepted(client: TestClient) -> None:
    opened = start(client, age=0)
    assert client.get(f"/v1/consultations/{opened['session_id']}").json()["age"] == 0


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/consultations", content=b'{"message": "fever', headers={"content-type": "application/json"}
    )
    assert assert_problem(response, 400)["title"] == "Malformed JSON"


@pytest.mark.parametrize(
    "body",
    [{}, {"text": "a", "answer": "Yes"}, {"text": ""}, {"answer": ""}, {"answer": "y" * 201}, {"txt": "a"}],
)
def test_message_needs_exactly_one_of_text_or_answer(client: TestClient, body: dict[str, Any]) -> None:
    session = start(client)["session_id"]
    assert_problem(client.post(f"/v1/consultations/{session}/messages", json=body), 422)


def test_unknown_session_is_404(client: TestClient) -> None:
    for response in (
        client.get("/v1/consultations/0123456789abcdef"),
        client.post("/v1/consultations/0123456789abcdef/messages", json={"text": "hello"}),
        client.post("/v1/consultations/0123456789abcdef/messages", json={"answer": "Yes"}),
    ):
        assert "0123456789abcdef" in assert_problem(response, 404)["detail"]


def test_malformed_session_id_is_422(client: TestClient) -> None:
    assert_problem(client.get("/v1/consultations/bad%20id%3B"), 422)


def test_answer_without_pending_question_is_409(client: TestClient) -> None:
    session = start(client)["session_id"]
    for _ in range(3):
        assert client.post(f"/v1/consultations/{session}/messages", json={"answer": "No"}).status_code == 200
    last = client.get(f"/v1/consultations/{session}").json()["last"]
    assert last["follow_up"] is None
    assert_problem(client.post(f"/v1/consultations/{session}/messages", json={"answer": "No"}), 409)


def test_unknown_api_path_is_problem_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_wrong_method_is_problem_405(client: TestClient) -> None:
    assert_problem(client.get("/v1/reports"), 405)


# --- reports -----------------------------------------------------------------------------


def test_report_draft_json_and_fhir(client: TestClient) -> None:
    files = {"image": ("chest.png", TINY_PNG, "image/png")}
    draft = client.post("/v1/reports", files=files, data={"indication": "cough for 2 weeks"})
    assert draft.status_code == 200
    assert draft.json()["impression"] and draft.json()["indication"] == "cough for 2 weeks"

    fhir = client.post("/v1/reports?format=fhir", files=files, data={"indication": "cough"})
    assert fhir.status_code == 200
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert fhir.json()["resourceType"] == "DiagnosticReport"


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ({"image": ("notes.txt", b"just text, not an image", "text/plain")}, 415),
        ({"image": ("fake.png", b"GIF89a....", "image/png")}, 415),
        ({"image": ("empty.png", b"", "image/png")}, 422),
        ({"image": ("broken.png", TINY_PNG + b"corrupt", "image/png")}, 422),
        ({"other": ("chest.png", TINY_PNG, "image/png")}, 422),
    ],
)
def test_report_rejects_bad_uploads(client: TestClient, files: dict[str, Any], status: int) -> None:
    assert_problem(client.post("/v1/reports", files=files, data={"indication": "x"}), status)


def test_report_rejects_unknown_format_and_json_body(client: TestClient) -> None:
    files = {"image": ("chest.png", TINY_PNG, "image/png")}
    assert_problem(client.post("/v1/reports?format=xml", files=files), 422)
    assert_problem(client.post("/v1/reports", json={"image": "x"}), 422)


def test_report_disabled_is_503(api_app_factory: Any, ui_settings: Settings) -> None:
    from ui.reporting import DisabledReportService
    from ui.server import create_app

    app = create_app(
        ui_settings,
        consultation=FakeConsultation(),
        report_service=DisabledReportService("no image model is configured"),
        with_ui=False,
    )
    with TestClient(app) as client:
        files = {"image": ("chest.png", TINY_PNG, "image/png")}
        assert "no image model" in assert_problem(client.post("/v1/reports", files=files), 503)["detail"]


# --- limits ------------------------------------------------------------------------------


@pytest.fixture
def small_limit_client(api_app_factory: Any, ui_settings: Settings) -> Iterator[TestClient]:
    settings = ui_settings.model_copy(update={"server": ServerSettings(max_request_bytes=2048)})
    with TestClient(api_app_factory(settings)) as test_client:
        yield test_client


def test_oversized_body_refused_by_content_length(small_limit_client: TestClient) -> None:
    files = {"image": ("big.png", TINY_PNG + b"\0" * 4096, "image/png")}
    body = assert_problem(small_limit_client.post("/v1/reports", files=files), 413)
    assert "2048" in body["detail"]
    big_json = {"message": "a" * 3000}
    assert_problem(small_limit_client.post("/v1/consultations", json=big_json), 413)


def test_oversized_body_refused_while_streaming(small_limit_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"message": "'
        for _ in range(10):
            yield b"a" * 512
        yield b'"}'

    response = small_limit_client.post(
        "/v1/consultations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)
    # A small chunked body still goes through.
    ok = small_limit_client.post(
        "/v1/consultations",
        content=iter([b'{"message": "fever"}']),
        headers={"content-type": "application/json"},
    )
    assert ok.status_code == 201


def test_bad_content_length_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/consultations",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "x"},
    )
    assert response.status_code == 400


# --- auth --------------------------------------------------------------------------------


def test_no_keys_configured_means_open(client: TestClient) -> None:
    assert client.post("/v1/consultations", json={"message": "fever"}).status_code == 201


def test_keys_required_when_configured(keyed_client: TestClient) -> None:
    body = {"message": "fever"}
    missing = assert_problem(keyed_client.post("/v1/consultations", json=body), 401)
    assert missing["type"].endswith("missing-api-key")
    wrong = keyed_client.post("/v1/consultations", json=body, headers={"X-API-Key": "nope"})
    assert assert_problem(wrong, 401)["type"].endswith("invalid-api-key")
    assert wrong.headers["www-authenticate"] == "Bearer"
    bad_scheme = keyed_client.post("/v1/consultations", json=body, headers={"Authorization": f"Basic {KEY}"})
    assert_problem(bad_scheme, 401)
    mixed = keyed_client.post(
        "/v1/consultations", json=body, headers={"Authorization": "Bearer wrong", "X-API-Key": KEY}
    )
    assert_problem(mixed, 401)

    bearer = keyed_client.post("/v1/consultations", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status_code == 201
    header = keyed_client.get(f"/v1/consultations/{bearer.json()['session_id']}", headers={"X-API-Key": KEY})
    assert header.status_code == 200
    files = {"image": ("chest.png", TINY_PNG, "image/png")}
    assert_problem(keyed_client.post("/v1/reports", files=files), 401)
    assert keyed_client.post("/v1/reports", files=files, headers={"X-API-Key": KEY}).status_code == 200


def test_health_and_docs_stay_open_with_keys(keyed_client: TestClient) -> None:
    assert keyed_client.get("/healthz").status_code == 200
    assert keyed_client.get("/openapi.json").status_code == 200
    schemes = keyed_client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)


def test_key_comparison() -> None:
    from ui.api.auth import key_matches

    keys = [SecretStr("alpha"), SecretStr("beta")]
    assert key_matches("beta", keys)
    assert not key_matches("bet", keys)
    assert not key_matches("", keys)
    assert not key_matches("alpha", [])


# --- health ------------------------------------------------------------------------------


def test_healthz_reports_each_component(api_app_factory: Any, ui_settings: Settings) -> None:
    app = api_app_factory(ui_settings)
    services = app.state.services
    services.probes = {
        "llm": static_probe("ok", "answers"),
        "graph": static_probe("ok", "answers"),
        "retriever": static_probe("ok", "loaded"),
        "vision": static_probe("disabled", "no image model is configured"),
    }
    with TestClient(app) as client:
        body = client.get("/healthz").json()
        assert body["status"] == "ok"
        assert body["components"]["vision"] == {
            "status": "disabled",
            "reason": "no image model is configured",
            "detail": {},
        }

        def broken() -> ComponentHealth:
            raise RuntimeError("boom")

        services.probes["graph"] = broken
        response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["status"] == "error"
        assert response.json()["components"]["graph"]["status"] == "error"


def test_llm_probe_reports_unreachable_server(ui_settings: Settings) -> None:
    from assistant.processes.supervisor import free_port
    from ui.health import llm_probe

    llm = ui_settings.llm.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}/v1"})
    health = llm_probe(ui_settings.model_copy(update={"llm": llm}))()
    assert health.status == "error" and "unreachable" in health.reason


# --- logs --------------------------------------------------------------------------------


def test_patient_text_stays_out_of_logs(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = client.post("/v1/consultations", json={"message": PATIENT_TEXT}).json()["session_id"]
    client.post(f"/v1/consultations/{session}/messages", json={"text": PATIENT_TEXT})
    assert "POST /v1/consultations 201" in caplog.text
    assert "purple rash" not in caplog.text


def test_patient_text_logged_when_enabled(
    api_app_factory: Any, ui_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ui_settings.model_copy(update={"server": ServerSettings(log_patient_text=True)})
    caplog.set_level(logging.INFO)
    with TestClient(api_app_factory(settings)) as client:
        client.post("/v1/consultations", json={"message": PATIENT_TEXT})
    assert "purple rash" in caplog.text


def test_unexpected_error_is_problem_500_without_details(
    api_app_factory: Any, ui_settings: Settings, fake_consultation: FakeConsultation
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"secret detail {PATIENT_TEXT}")

    fake_consultation.start = explode  # type: ignore[method-assign]
    with TestClient(api_app_factory(ui_settings), raise_server_exceptions=False) as client:
        body = assert_problem(client.post("/v1/consultations", json={"message": "hi"}), 500)
    assert "purple" not in body["detail"]
