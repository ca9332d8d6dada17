"""A deadline on every API request: past it the client gets 504 problem+json, not a hang.

A sync route runs in a worker thread that cannot be cancelled; the client is answered at the
deadline and the late result is dropped when it comes. A consultation turn that finishes after
its 504 is still recorded (the consultation's GET shows it); one that fails is rolled back.
Gradio's own routes (long-lived event streams) are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui.api.problems import PROBLEM_MEDIA_TYPE, problem_bytes

log = logging.getLogger(__name__)

API_PREFIXES = ("/v1/", "/healthz")


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, *, timeout_s: float, prefixes: Sequence[str] = API_PREFIXES) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.prefixes = tuple(prefixes)
        self._late: set[asyncio.Task[None]] = set()  # requests answered 504, still finishing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or self.timeout_s <= 0 or not path.startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        state = {"started": False, "expired": False}

        async def guarded_send(message: Message) -> None:
            if state["expired"]:
                return  # the client already has its 504
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        if done:
            task.result()
            return
        state["expired"] = True
        # Not awaited: a sync route's thread finishes on its own; its reply is dropped.
        self._late.add(task)
        task.add_done_callback(self._late.discard)
        task.add_done_callback(_log_late_failure)
        if state["started"]:
            return  # headers already went out: nothing better than closing
        log.warning("%s %s passed its %.0f s deadline", scope.get("method"), path, self.timeout_s)
        body = problem_bytes(
            504,
            f"The request did not finish within {self.timeout_s:.0f} s. A consultation message may "
            "still be recorded: read the consultation before sending it again.",
            slug="deadline-exceeded",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 504,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"5"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _log_late_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("a request finished after its deadline with %s", type(task.exception()).__name__)
