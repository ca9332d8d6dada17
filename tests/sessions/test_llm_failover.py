"""Client-side LLM failover (MEDKG_LLM__FALLBACK_URLS) against local fake OpenAI-compatible
servers and a dead port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from assistant.llm import create_chat_model
from assistant.llm.base import LLMError
from assistant.llm.failover import FailoverChatModel
from assistant.processes.supervisor import free_port
from assistant.settings import LLMSettings


class FakeServer:
    """A /v1/chat/completions that answers ``reply`` (or fails with ``status``), counting calls."""

    def __init__(self, reply: str, status: int = 200) -> None:
        self.reply, self.status, self.calls = reply, status, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                owner.calls += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if owner.status != 200:
                    self.send_response(owner.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "boom"}}')
                    return
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
                    delta = {**chunk, "choices": [{"index": 0, "delta": {"content": owner.reply}}]}
                    self.wfile.write(f"data: {json.dumps(delta)}\n\ndata: [DONE]\n\n".encode())
                    return
                completion = {
                    "id": "c",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": owner.reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                }
                data = json.dumps(completion).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[dict[str, FakeServer]]:
    made = {"a": FakeServer("from a"), "b": FakeServer("from b"), "down": FakeServer("x", status=503)}
    yield made
    for server in made.values():
        server.close()


def llm(urls: list[str], **kw: Any) -> FailoverChatModel:
    settings = LLMSettings(base_url=urls[0], fallback_urls=urls[1:], max_retries=0, connect_timeout_s=2, **kw)
    model = create_chat_model(settings)
    assert isinstance(model, FailoverChatModel)
    return model


def test_no_fallback_is_the_plain_client() -> None:
    assert (
        type(create_chat_model(LLMSettings(base_url="http://127.0.0.1:9/v1"))).__name__ == "OpenAIChatModel"
    )


def test_dead_port_then_next_server(servers: dict[str, FakeServer]) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with llm([dead, servers["b"].url]) as model:
        assert model.chat([{"role": "user", "content": "hi"}]).text == "from b"
        assert "".join(model.stream([{"role": "user", "content": "hi"}])) == "from b"
        assert model.usage_totals().completion_tokens >= 2  # counted by the server that answered


def test_5xx_fails_over_and_the_failed_server_cools_down(servers: dict[str, FakeServer]) -> None:
    down, b = servers["down"], servers["b"]
    with llm([down.url, b.url], fallback_cooldown_s=60) as model:
        for _ in range(3):
            assert model.chat([{"role": "user", "content": "hi"}]).text == "from b"
        assert down.calls == 1 and b.calls == 3  # skipped while cooling down


def test_primary_preferred_again_after_cooldown(servers: dict[str, FakeServer]) -> None:
    a, b = servers["a"], servers["b"]
    with llm([a.url, b.url], fallback_cooldown_s=0) as model:
        a.status = 503
        assert model.chat([{"role": "user", "content": "hi"}]).text == "from b"
        a.status = 200
        assert model.chat([{"role": "user", "content": "hi"}]).text == "from a"


def test_client_errors_and_all_down_are_not_hidden(servers: dict[str, FakeServer]) -> None:
    a, b = servers["a"], servers["b"]
    a.status = 400
    with llm([a.url, b.url]) as model, pytest.raises(LLMError, match="rejected the request"):
        model.chat([{"role": "user", "content": "hi"}])
    assert b.calls == 0  # a bad request is not sent elsewhere
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    with llm(dead) as model, pytest.raises(LLMError, match="cannot reach"):
        model.chat([{"role": "user", "content": "hi"}])


def test_structured_output_goes_through_failover(servers: dict[str, FakeServer]) -> None:
    class Answer(BaseModel):
        ok: bool

    servers["b"].reply = '{"ok": true}'
    with llm([f"http://127.0.0.1:{free_port()}/v1", servers["b"].url]) as model:
        assert model.structured([{"role": "user", "content": "json"}], Answer).ok is True


def test_fallback_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.settings import Settings

    monkeypatch.setenv("MEDKG_LLM__FALLBACK_URLS", '["http://b:8000/v1", "http://c:8000/v1"]')
    assert Settings().llm.fallback_urls == ["http://b:8000/v1", "http://c:8000/v1"]
