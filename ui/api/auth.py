"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, when any are configured."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import Depends
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


def credential_from(bearer: HTTPAuthorizationCredentials | None, api_key: str | None) -> str | None:
    if bearer is not None and bearer.credentials.strip():
        return bearer.credentials.strip()
    return api_key or None


def require_api_key(keys: Sequence[SecretStr]) -> Callable[..., None]:
    """A dependency that lets a request through when no keys are set or a valid key is given."""
    configured = [key for key in keys if key.get_secret_value()]

    def dependency(
        # Declared as security dependencies so that OpenAPI (and /docs' Authorize button)
        # shows both schemes.
        bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
        api_key: str | None = Depends(api_key_scheme),
    ) -> None:
        if not configured:
            return
        given = credential_from(bearer, api_key)
        if given is None:
            raise Problem(
                401,
                "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                slug="missing-api-key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not key_matches(given, configured):
            raise Problem(
                401,
                "The API key is not valid.",
                slug="invalid-api-key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return dependency
