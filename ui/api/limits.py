"""Request body size limit, enforced before and while the body arrives.

A declared ``Content-Length`` above the limit is refused before the app reads a byte. A
chunked or under-declared body is counted as it streams; once it passes the limit the app
sees the body end, and whatever it would have answered is replaced by a 413.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui.api.problems import PROBLEM_MEDIA_TYPE, problem_bytes


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
