"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis): no 5xx, and
every response matches the schema (status codes, content types, bodies)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import positive_data_acceptance

from assistant.settings import ServerSettings, Settings
from tests.fixtures.ui import FakeConsultation, FakeReportService
from ui.server import create_app

KEY = "fuzz-key-0123456789"
# positive_data_acceptance is left out: a schema cannot say "these bytes must decode to a PNG,
# JPEG or DICOM image", so schema-valid random images are rightly refused (415/422).
EXCLUDED = [positive_data_acceptance]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _app(settings_: Settings) -> object:
    return create_app(
        settings_, consultation=FakeConsultation(), report_service=FakeReportService(), with_ui=False
    )


# Built at import: schemathesis turns each operation of the schema into a test.
open_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", _app(Settings(data_dir=Path("/nonexistent/fuzz")))
)
keyed_schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    _app(Settings(data_dir=Path("/nonexistent/fuzz"), server=ServerSettings(api_keys=[SecretStr(KEY)]))),
)


@open_schema.parametrize()
@FUZZ
def test_open_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=EXCLUDED)


@keyed_schema.parametrize()
@FUZZ
def test_keyed_api_conforms_and_enforces_keys(case: schemathesis.Case) -> None:
    # With a valid key the operations behave; schemathesis' ignored_auth check also sends
    # missing and wrong credentials and expects 401.
    case.call_and_validate(headers={"X-API-Key": KEY}, excluded_checks=EXCLUDED)
