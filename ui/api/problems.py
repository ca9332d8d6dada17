"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Bodies carry type, title, status and detail; validation errors add the failing fields
(location and message only, never the submitted value: it may be patient text).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.outages import DependencyUnavailableError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://medkg.dev/problems/"


class Problem(Exception):
    """Raise anywhere in a route to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.slug = slug or self.title.lower().replace(" ", "-").replace("'", "")
        self.headers = headers
        self.extra = extra or {}


def problem_body(
    status: int, detail: str, *, slug: str | None = None, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    title = title or HTTPStatus(status).phrase
    slug = slug or title.lower().replace(" ", "-").replace("'", "")
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extra}


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, slug=slug, title=title, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_bytes(status: int, detail: str, *, slug: str | None = None) -> bytes:
    """The body for responses sent from raw ASGI middleware (no Response object there)."""
    return json.dumps(problem_body(status, detail, slug=slug)).encode()


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err.get("type"),
        }
        for err in exc.errors()
    ]


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status, exc.detail, slug=exc.slug, title=exc.title, headers=exc.headers, **exc.extra
    )


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(err["type"] == "json_invalid" for err in errors):
        return problem_response(
            400, "The request body is not valid JSON.", slug="malformed-json", title="Malformed JSON"
        )
    fields = ", ".join(".".join(err["loc"][1:] or err["loc"]) for err in errors) or "request"
    return problem_response(
        422,
        f"The request is invalid: {fields}. See 'errors' for each problem.",
        slug="invalid-request",
        title="Invalid request",
        errors=errors,
    )


async def _on_http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, detail, headers=headers)


async def _on_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # The graph or the LLM is down or restarting: the turn was not recorded, so the client can
    # send the same message again after Retry-After.
    assert isinstance(exc, DependencyUnavailableError)
    return problem_response(
        503,
        exc.detail,
        slug=f"{exc.component}-unavailable",
        title="Service temporarily unavailable",
        headers={"Retry-After": str(exc.retry_after_s)},
        component=exc.component,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The exception type and traceback go to the log; its message may quote patient text
    # (an LLM error echoing the prompt), so it is not sent to the client.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "The server failed to handle the request; the error was logged.", slug="internal-error"
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(DependencyUnavailableError, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
