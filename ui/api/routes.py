"""The JSON API under /v1 and /healthz."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from assistant.contracts import ConsultationState, NoPendingQuestionError, SessionNotFoundError, TurnResult
from assistant.sessions import SessionBusyError
from assistant.settings import VisionSettings
from ui.api.auth import api_guard, owner_of, session_owners
from ui.api.images import SUPPORTED, ImageTooLargeError, check_decoded_size, sniff_image_kind
from ui.api.limits import RateLimits, add_login_throttle
from ui.api.models import (
    MAX_INDICATION_CHARS,
    MAX_QUESTION_CHARS,
    ConsultationCreate,
    HealthReport,
    ImageQuestionResponse,
    MessageCreate,
    ReportDraftResponse,
)
from ui.api.problems import PROBLEM_MEDIA_TYPE, Problem
from ui.health import overall_status, run_probes
from ui.services import AppServices, ConsultationService, ReportService, ReportUnavailableError
from vlm.base import ImageError, VisionUnavailableError

log = logging.getLogger("ui.api")

SessionId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="Consultation id")
]

_PROBLEM = {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": "Problem details (RFC 9457)"}


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: _PROBLEM for code in codes}


def services_of(request: Request) -> AppServices:
    services: AppServices = request.app.state.services
    return services


def _consultation(services: AppServices) -> ConsultationService:
    if services.consultation is None:
        raise Problem(503, "The consultation service is not running.", slug="consultation-unavailable")
    return services.consultation


def _check_image(data: bytes | None, vision: VisionSettings) -> None:
    if data is None:
        return
    if not data:
        raise Problem(422, "The image is empty.", slug="empty-image")
    if sniff_image_kind(data) is None:
        raise Problem(415, f"The upload is not a {SUPPORTED} image.", slug="unsupported-image")
    try:  # from the header, before any pixel is decoded
        check_decoded_size(data, vision)
    except ImageTooLargeError as exc:
        raise Problem(413, str(exc), slug="image-too-large") from exc


def _existing_state(consultation: ConsultationService, session_id: str) -> ConsultationState:
    try:
        state = consultation.state(session_id)
    except SessionNotFoundError as exc:
        raise _unknown(session_id) from exc
    # A checkpointer answers an unknown thread with an empty state rather than an error.
    if state.last is None and not state.transcript:
        raise _unknown(session_id)
    return state


def _unknown(session_id: str) -> Problem:
    return Problem(404, f"No consultation with id '{session_id}'.", slug="unknown-consultation")


def _log_turn(services: AppServices, kind: str, session_id: str, text: str | None) -> None:
    if services.settings.server.log_patient_text and text is not None:
        log.info("%s session=%s text=%r", kind, session_id, text)
    else:
        log.info("%s session=%s chars=%d", kind, session_id, len(text or ""))


def _run_turn(services: AppServices, session_id: str, body: MessageCreate) -> TurnResult:
    consultation = _consultation(services)
    _existing_state(consultation, session_id)
    try:
        if body.answer is not None:
            _log_turn(services, "answer", session_id, body.answer)
            return consultation.answer(session_id, body.answer)
        image = body.image()
        _check_image(image, services.settings.vision)
        assert body.text is not None
        _log_turn(services, "message", session_id, body.text)
        return consultation.send(session_id, body.text, image=image)
    except NoPendingQuestionError as exc:
        raise Problem(
            409,
            "This consultation has no pending question to answer; send 'text' instead.",
            slug="no-pending-question",
        ) from exc
    except SessionNotFoundError as exc:
        raise _unknown(session_id) from exc
    except SessionBusyError as exc:
        raise Problem(
            409,
            "Another request is still being answered for this consultation; send again shortly.",
            slug="consultation-busy",
            headers={"Retry-After": "5"},
        ) from exc


def build_router(services: AppServices) -> APIRouter:
    keys = [key for key in services.settings.server.api_keys if key.get_secret_value()]
    # Only an API that checks keys declares security schemes in its OpenAPI (api_guard's choice).
    limits = RateLimits(services.settings.server.rate_limits)
    # Shared by every replica when the sessions are in Postgres (else a replica 404s another's).
    owners = session_owners(services.settings, services.consultation)
    auth = [Depends(api_guard(keys, limits))]
    v1 = APIRouter(prefix="/v1", dependencies=auth, responses=_problems(400, 401, 413, 422, 429, 500, 503))

    @v1.post(
        "/consultations",
        response_model=TurnResult,
        status_code=201,
        tags=["consultations"],
        summary="Open a consultation",
        responses=_problems(415),
    )
    def create_consultation(body: ConsultationCreate, request: Request) -> TurnResult:
        services = services_of(request)
        consultation = _consultation(services)
        image = body.image()
        _check_image(image, services.settings.vision)
        result = consultation.start(body.message, age=body.age, sex=body.sex, image=image)
        owners.claim(result.session_id, owner_of(request))
        _log_turn(services, "start", result.session_id, body.message)
        return result

    @v1.post(
        "/consultations/{session_id}/messages",
        response_model=TurnResult,
        tags=["consultations"],
        summary="Send a message or answer the pending question",
        responses=_problems(404, 409, 415),
    )
    def post_message(session_id: SessionId, body: MessageCreate, request: Request) -> TurnResult:
        if not owners.owns(session_id, owner_of(request)):  # another key's consultation: 404, as unknown
            raise _unknown(session_id)
        return _run_turn(services_of(request), session_id, body)

    @v1.get(
        "/consultations/{session_id}",
        response_model=ConsultationState,
        tags=["consultations"],
        summary="The consultation so far",
        responses=_problems(404),
    )
    def get_consultation(session_id: SessionId, request: Request) -> ConsultationState:
        if not owners.owns(session_id, owner_of(request)):
            raise _unknown(session_id)
        return _existing_state(_consultation(services_of(request)), session_id)

    @v1.post(
        "/reports",
        response_model=ReportDraftResponse,
        tags=["reports"],
        summary="Draft a report from an image and an indication",
        description="`format=fhir` answers with a FHIR R4 DiagnosticReport instead of the draft.",
        responses=_problems(415),
    )
    async def create_report(
        request: Request,
        image: Annotated[UploadFile, File(description="PNG, JPEG or DICOM image")],
        indication: Annotated[str, Form(max_length=MAX_INDICATION_CHARS)] = "",
        format: Annotated[Literal["json", "fhir"], Query()] = "json",
    ) -> Any:
        services = services_of(request)
        if services.reports is None:
            raise Problem(503, "Report drafting is not configured.", slug="reports-unavailable")
        data = await image.read()
        _check_image(data, services.settings.vision)
        draft = await run_in_threadpool(_draft, services.reports, data, indication.strip())
        if format == "fhir":
            fhir = services.reports.to_fhir(draft)
            return JSONResponse(fhir, media_type="application/fhir+json")
        return draft.model_dump(mode="json")

    @v1.post(
        "/images/questions",
        response_model=ImageQuestionResponse,
        tags=["images"],
        summary="Ask a question about an image",
        description="Answers from the image model's probability for the finding the question names. "
        "Findings the model does not cover are `not assessed`; an image unlike the model's training "
        "images is `out of scope` and not scored.",
        responses=_problems(415),
    )
    async def ask_image(
        request: Request,
        image: Annotated[UploadFile, File(description="PNG, JPEG or DICOM image")],
        question: Annotated[str, Form(min_length=1, max_length=MAX_QUESTION_CHARS)],
    ) -> ImageQuestionResponse:
        services = services_of(request)
        data = await image.read()
        _check_image(data, services.settings.vision)
        answer: ImageQuestionResponse = await run_in_threadpool(
            _ask_image, services, data, question.strip(), image.filename
        )
        return answer

    @v1.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def not_found(path: str, request: Request) -> None:
        # Without this, unknown /v1 paths would fall through to the Gradio app's HTML 404.
        # It also wins over a route that matches the path but not the method, hence the 405.
        allowed = _allowed_methods(v1, request.url.path)
        if allowed:
            raise Problem(
                405,
                f"/v1/{path} does not accept {request.method}; use {', '.join(allowed)}.",
                headers={"Allow": ", ".join(allowed)},
            )
        raise Problem(404, f"There is no API endpoint at /v1/{path}.", slug="not-found")

    health = APIRouter()

    @health.get("/healthz", response_model=HealthReport, tags=["health"], summary="Each component's status")
    async def healthz(request: Request) -> JSONResponse:
        services = services_of(request)
        components = await run_probes(services.probes)
        report = HealthReport(status=overall_status(components), components=components, version=_version())
        return JSONResponse(
            report.model_dump(mode="json"), status_code=200 if report.status != "error" else 503
        )

    router = APIRouter()
    router.include_router(v1)
    router.include_router(health)
    add_login_throttle(router, limits)  # the Gradio UI's POST /login, per client address
    return router


def _allowed_methods(router: APIRouter, path: str) -> list[str]:
    allowed: set[str] = set()
    for route in router.routes:
        methods = getattr(route, "methods", None)
        path_regex = getattr(route, "path_regex", None)
        if not methods or path_regex is None or "{path:path}" in getattr(route, "path", ""):
            continue
        if path_regex.match(path):
            allowed |= set(methods)
    return sorted(allowed - {"HEAD"})


def _ask_image(
    services: AppServices, data: bytes, question: str, filename: str | None
) -> ImageQuestionResponse:
    # The report service holds the app's one encoder (absent: vision is off, and it says why).
    encoder = getattr(services.reports, "encoder", None)
    if encoder is None:
        reason = getattr(services.reports, "reason", None) or "Image analysis is not configured."
        raise Problem(503, str(reason), slug="images-unavailable")
    from assistant.image_qa import answer_about_image

    vision = services.settings.vision
    try:
        answer = answer_about_image(
            data,
            question,
            encoder,
            filename=filename,
            threshold=vision.finding_threshold,
            temperature=vision.temperature,
            max_bytes=vision.max_upload_bytes,
            max_pixels=vision.max_pixels,
        )
    except ImageError as exc:
        raise Problem(422, f"The image could not be read: {exc}", slug="unreadable-image") from exc
    return ImageQuestionResponse.model_validate(answer.model_dump())


def _draft(reports: ReportService, data: bytes, indication: str) -> BaseModel:
    try:
        return reports.draft(data, indication)
    except ImageError as exc:
        raise Problem(422, f"The image could not be read: {exc}", slug="unreadable-image") from exc
    except (ReportUnavailableError, VisionUnavailableError) as exc:
        raise Problem(503, str(exc), slug="reports-unavailable") from exc


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medkg")
    except PackageNotFoundError:
        return "0+unknown"
