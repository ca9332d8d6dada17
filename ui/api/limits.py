"""Request limits: body size (enforced before and while the body arrives) and rate limits.

A declared ``Content-Length`` above the limit is refused before the app reads a byte. A
chunked or under-declared body is counted as it streams; once it passes the limit the app
sees the body end, and whatever it would have answered is replaced by a 413.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.settings import RateLimitSettings
from ui.api.problems import PROBLEM_MEDIA_TYPE, Problem, problem_bytes


class BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared == -1:
            await _send_problem(send, 400, "The Content-Length header is not a valid number.")
            return
        if declared is not None and declared > self.max_bytes:
            await _send_problem(send, 413, self._detail())
            return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    # Stop feeding the app; what it has read so far is discarded.
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the 413 below replaces whatever the app answers
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not response_started:
            await _send_problem(send, 413, self._detail())

    def _detail(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."


def _content_length(scope: Scope) -> int | None:
    """The declared length, None when absent, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


async def _send_problem(send: Send, status: int, detail: str) -> None:
    body = problem_bytes(status, detail, slug="payload-too-large" if status == 413 else None)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- rate limits


class RateLimiter:
    """Token buckets keyed by a string (an API key's hash, a client address).

    ``take`` answers 0.0 when the request may go on, else the seconds until it may. At most
    ``max_keys`` buckets are remembered, the least recently used forgotten first, so a flood
    of new addresses or keys cannot grow memory without bound (a forgotten bucket starts full
    again, which only ever errs towards letting a request through).
    """

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = max(per_minute, 1e-6) / 60.0
        self.burst = max(1, burst)
        self.max_keys = max(1, max_keys)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        with self._lock:
            tokens = self._refill(key)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, self.clock())
                return 0.0
            self._buckets[key] = (tokens, self.clock())
            return (cost - tokens) / self.rate

    def wait(self, key: str) -> float:
        """Seconds until one token is there, taking nothing."""
        with self._lock:
            tokens = self._refill(key)
            self._buckets[key] = (tokens, self.clock())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, key: str) -> float:
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        while len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)
        return tokens


class RateLimits:
    """The API's and the UI login's limiters, built from ``settings.server.rate_limits``."""

    def __init__(self, settings: RateLimitSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.enabled
        n = settings.max_tracked
        self.per_key = RateLimiter(
            settings.per_key_per_minute, settings.per_key_burst, max_keys=n, clock=clock
        )
        self.per_address = RateLimiter(
            settings.per_address_per_minute, settings.per_address_burst, max_keys=n, clock=clock
        )
        self.auth_failures = RateLimiter(
            settings.auth_failures_per_minute, settings.auth_failures_burst, max_keys=n, clock=clock
        )
        self.ui_logins = RateLimiter(
            settings.ui_logins_per_minute, settings.ui_logins_burst, max_keys=n, clock=clock
        )


def too_many_requests(wait_s: float, what: str) -> Problem:
    retry = max(1, math.ceil(wait_s))
    return Problem(
        429,
        f"Too many {what}; retry in {retry} s.",
        slug="rate-limited",
        headers={"Retry-After": str(retry)},
        extra={"retry_after_s": retry},
    )


def client_address(scope_or_request: Any) -> str:
    """The peer address (behind a reverse proxy, run uvicorn with --proxy-headers so that this
    is the client's, not the proxy's)."""
    client = scope_or_request.get("client") if isinstance(scope_or_request, dict) else scope_or_request.client
    if client is None:
        return "unknown"
    host = client[0] if isinstance(client, tuple | list) else getattr(client, "host", None)
    return str(host or "unknown")


UI_LOGIN_PATHS = ("/login", "/login/")


class LoginThrottleRoute(APIRoute):
    """Stands in front of the Gradio UI's ``POST /login`` (mounted below the API routes).

    Every login attempt takes a token from its address's bucket; while the bucket has tokens the
    route does not match and Gradio's own login answers; once it is empty this route matches and
    answers 429 with Retry-After. The login callback cannot see the address, hence a route.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        limits: RateLimits | None = getattr(self.endpoint, "rate_limits", None)
        if (
            limits is None
            or not limits.enabled
            or scope.get("type") != "http"
            or scope.get("method") != "POST"
            or scope.get("path") != self.path  # one route per path: one token per attempt
        ):
            return Match.NONE, {}
        wait = limits.ui_logins.take(client_address(scope))
        if wait <= 0:
            return Match.NONE, {}
        scope.setdefault("state", {})["medkg_login_wait"] = wait
        match, child = super().matches({**scope, "path": self.path})
        return (Match.FULL, child) if match != Match.NONE else (Match.NONE, {})


def add_login_throttle(router: APIRouter, limits: RateLimits) -> None:
    def login_throttled(request: Request) -> None:
        raise too_many_requests(
            float(request.scope.get("state", {}).get("medkg_login_wait", 60.0)), "sign-in attempts"
        )

    login_throttled.rate_limits = limits  # type: ignore[attr-defined]
    for path in UI_LOGIN_PATHS:
        router.add_api_route(
            path,
            login_throttled,
            methods=["POST"],
            include_in_schema=False,
            route_class_override=LoginThrottleRoute,
        )
