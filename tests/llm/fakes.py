"""A scripted OpenAI-compatible server on an in-memory transport, for unit tests of the client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from assistant.llm import OpenAIChatModel
from assistant.llm._http import http

Reply = Callable[[dict[str, Any]], Any]


def completion(content: str, **message_extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, **message_extra},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def sse(deltas: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
    events = []
    for delta in deltas:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    final = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    events.append(f"data: {json.dumps(final)}\n\n")
    if usage is not None:
        tail = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "fake-model"}
        events.append(f"data: {json.dumps({**tail, 'choices': [], 'usage': usage})}\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


class ScriptedServer:
    """Answers each request with the next scripted reply; records the request bodies."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def handler(self, request: Any) -> Any:
        body = json.loads(request.content or b"{}")
        self.requests.append(body)
        if not self.replies:
            raise AssertionError("the fake server got more requests than scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, http.Response):
            return reply
        if isinstance(reply, bytes):
            return http.Response(200, content=reply, headers={"content-type": "text/event-stream"})
        return http.Response(200, json=reply)

    def model(self, **options: Any) -> tuple[OpenAIChatModel, list[float]]:
        sleeps: list[float] = []
        client = http.Client(transport=http.MockTransport(self.handler))
        options.setdefault("model", "fake-model")
        chat_model = OpenAIChatModel("http://llm.test/v1", http_client=client, sleep=sleeps.append, **options)
        return chat_model, sleeps


def status(code: int, headers: dict[str, str] | None = None) -> Any:
    return http.Response(code, json={"error": {"message": f"status {code}"}}, headers=headers)
