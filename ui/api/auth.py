"""API keys (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, when any are configured),
rate limits per key and per address, and who owns a consultation.

A consultation belongs to the API key that created it: its owner id is a hash of the key (never
the key). Any other key gets the same 404 as an unknown id, so ids cannot be probed. Without
configured keys the API is single-tenant: every caller is ``anonymous``.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from assistant.private_files import private_file
from assistant.settings import Settings
from ui.api.limits import RateLimits, client_address, too_many_requests
from ui.api.problems import Problem

ANONYMOUS = "anonymous"

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


# --------------------------------------------------------------------------- identity and limits


def owner_id(credential: str) -> str:
    """The owner id of an API key: a SHA-256 digest, so the sessions file never holds a key."""
    return "key:" + hashlib.sha256(b"medkg-owner\x00" + credential.encode()).hexdigest()[:40]


def owner_of(request: Request) -> str:
    """Who is calling (set by ``api_guard``); anonymous when the API has no keys."""
    return str(getattr(request.state, "medkg_owner", ANONYMOUS))


def api_guard(keys: Sequence[SecretStr], limits: RateLimits | None) -> Callable[..., None]:
    """The /v1 dependency: address lock-out after failed authentications, per-address rate,
    API key check, per-key rate; it leaves the caller's owner id on ``request.state``."""
    configured = [key for key in keys if key.get_secret_value()]
    check_key = require_api_key(configured)
    on = limits is not None and limits.enabled

    def guard(request: Request) -> None:
        address = client_address(request)
        if on and limits is not None:
            wait = limits.auth_failures.wait(address)
            if wait > 0:  # this address failed to authenticate too often: nothing goes through
                raise too_many_requests(wait, "failed authentications from this address")
            wait = limits.per_address.take(address)
            if wait > 0:
                raise too_many_requests(wait, "requests from this address")
        owner = ANONYMOUS
        if configured:
            try:
                check_key(request)
            except Problem:
                if on and limits is not None:
                    limits.auth_failures.take(address)
                raise
            owner = owner_id(credentials_from(request)[0])
            if on and limits is not None:
                wait = limits.per_key.take(owner)
                if wait > 0:
                    raise too_many_requests(wait, "requests for this API key")
        request.state.medkg_owner = owner

    if not configured:

        def open_dependency(request: Request) -> None:
            guard(request)

        return open_dependency

    def dependency(
        request: Request,
        # Security dependencies, so that OpenAPI (and /docs' Authorize button) shows both schemes.
        _bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
        _api_key: str | None = Depends(api_key_scheme),
    ) -> None:
        guard(request)

    return dependency


class SessionOwners:
    """Owner id per consultation, in its own table of the sessions database.

    ``owns`` is true only for the recorded owner. A consultation without a record (made by the
    UI, the CLI, or before owners were recorded) belongs to nobody when keys are configured, and
    to the anonymous caller of a keyless (single-tenant) API.
    """

    def __init__(self, path: Path | str) -> None:
        # No data dir (an app over injected fakes): nothing else persists, so owners live in memory.
        persistent = str(path) != ":memory:" and Path(path).parent.is_dir()
        self.path = str(path) if persistent else ":memory:"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                private_file(Path(self.path))
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS medkg_session_owners"
                " (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL)"
            )
            self._conn.commit()
        return self._conn

    def claim(self, session_id: str, owner: str) -> None:
        with self._lock:
            db = self._db()
            db.execute(
                "INSERT OR IGNORE INTO medkg_session_owners (session_id, owner) VALUES (?, ?)",
                (session_id, owner),
            )
            db.commit()

    def owner(self, session_id: str) -> str | None:
        with self._lock:
            row = (
                self._db()
                .execute("SELECT owner FROM medkg_session_owners WHERE session_id = ?", (session_id,))
                .fetchone()
            )
        return str(row[0]) if row else None

    def owns(self, session_id: str, owner: str) -> bool:
        recorded = self.owner(session_id)
        if recorded is None:
            return owner == ANONYMOUS
        return hmac.compare_digest(recorded, owner)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresSessionOwners(SessionOwners):
    """The same records in the sessions' Postgres database (``medkg_session_owners``, created by
    assistant.sessions.PostgresSessions), so that every replica knows every consultation's owner."""

    def __init__(self, pool: Any) -> None:
        self.path = "postgres"
        self._conn = None
        self._lock = threading.Lock()
        self._pool = pool  # the store's psycopg ConnectionPool; the store closes it

    def claim(self, session_id: str, owner: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO medkg_session_owners (session_id, owner) VALUES (%s, %s)"
                " ON CONFLICT (session_id) DO NOTHING",
                (session_id, owner),
            )

    def owner(self, session_id: str) -> str | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT owner FROM medkg_session_owners WHERE session_id = %s", (session_id,)
            ).fetchone()
        if row is None:
            return None
        return str(row["owner"] if isinstance(row, dict) else row[0])

    def close(self) -> None:
        """Nothing of its own to close: the pool belongs to the session store."""


def session_owners(settings: Settings, consultation: object) -> SessionOwners:
    """Owner records where the consultations are: the Postgres database the consultation's
    session store shares with other replicas, else the SQLite file next to the sessions."""
    store = getattr(consultation, "sessions", None)
    if getattr(store, "kind", None) == "postgres":
        return PostgresSessionOwners(store.pool)  # type: ignore[union-attr]
    return SessionOwners(settings.sessions_path)
