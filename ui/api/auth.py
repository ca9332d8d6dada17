"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, when any are configured."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from ui.api.problems import Problem

# auto_error=False: a missing key is our own 401 problem, not FastAPI's 403 JSON.
bearer_scheme = HTTPBearer(auto_error=False, description="API key as a bearer token")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def key_matches(candidate: str, keys: Sequence[SecretStr]) -> bool:
    """Constant-time comparison against every key (no early exit that would leak which matched)."""
    given = candidate.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.get_secret_value().encode())
    return matched


def credentials_from(request: Request) -> list[str]:
    """Every credential the request presents; a non-Bearer Authorization counts (as invalid)."""
    found: list[str] = []
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        found.append(token.strip() if scheme.lower() == "bearer" else "")
    api_key = request.headers.get("x-api-key")
    if api_key is not None:
        found.append(api_key.strip())
    return found


def require_api_key(keys: Sequence[SecretStr]) -> Callable[..., None]:
    """A dependency that lets a request through when no keys are set, or when it presents at
    least one credential and every credential it presents is a valid key (a wrong key next to
    a right one is refused: it is a misconfigured or probing client)."""
    configured = [key for key in keys if key.get_secret_value()]

    def dependency(
        request: Request,
        # Declared as security dependencies so that OpenAPI (and /docs' Authorize button)
        # shows both schemes; the headers are read from the request itself.
        _bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
        _api_key: str | None = Depends(api_key_scheme),
    ) -> None:
        if not configured:
            return
        given = credentials_from(request)
        if not given:
            raise Problem(
                401,
                "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                slug="missing-api-key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not all(key_matches(credential, configured) for credential in given):
            raise Problem(
                401,
                "The API key is not valid.",
                slug="invalid-api-key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return dependency
