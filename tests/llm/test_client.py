"""OpenAIChatModel against a scripted server: retries, errors, structured repair, streaming."""

from __future__ import annotations

import threading
from typing import Literal

import pytest
from pydantic import BaseModel

from assistant.llm import (
    ChatMessage,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    OpenAIChatModel,
    StructuredOutputError,
    create_chat_model,
)
from assistant.llm._http import http
from assistant.llm.retry import RetryPolicy
from assistant.settings import LLMSettings
from tests.llm.fakes import ScriptedServer, completion, sse, status

ASK = [ChatMessage(role="user", content="Is it raining?")]


class Verdict(BaseModel):
    answer: Literal["yes", "no"]
    confidence: float


def test_chat_returns_text_usage_and_counts_totals() -> None:
    server = ScriptedServer(completion("Yes."), completion("No."))
    model, _ = server.model()
    first = model.chat(ASK)
    second = model.chat(ASK, temperature=0.7, max_tokens=3, stop=["\n"])
    assert (first.text, second.text) == ("Yes.", "No.")
    assert first.usage.prompt_tokens == 10 and first.usage.completion_tokens == 5
    assert model.usage_totals().total_tokens == 30
    assert model.usage.requests == 2
    assert server.requests[1]["temperature"] == 0.7
    assert server.requests[1]["max_tokens"] == 3
    assert server.requests[1]["stop"] == ["\n"]
    assert server.requests[0]["messages"] == [{"role": "user", "content": "Is it raining?"}]


def test_cache_prompt_is_sent_only_when_off() -> None:
    server = ScriptedServer(completion("a"), completion("b"))
    model, _ = server.model()
    model.chat(ASK)
    model.chat(ASK, cache_prompt=False)
    assert "cache_prompt" not in server.requests[0]
    assert server.requests[1]["cache_prompt"] is False


def test_think_block_goes_to_reasoning() -> None:
    server = ScriptedServer(
        completion("<think>Clouds, wet streets.</think>\n\nYes."),
        completion("dark sky\n</think>\nYes."),
        completion("Yes.", reasoning_content="server-split reasoning"),
    )
    model, _ = server.model()
    tagged, unclosed, split = (model.chat(ASK) for _ in range(3))
    assert (tagged.text, tagged.reasoning) == ("Yes.", "Clouds, wet streets.")
    assert (unclosed.text, unclosed.reasoning) == ("Yes.", "dark sky")
    assert (split.text, split.reasoning) == ("Yes.", "server-split reasoning")


def test_top_logprobs_are_requested_and_returned() -> None:
    reply = completion("Yes")
    reply["choices"][0]["logprobs"] = {
        "content": [
            {
                "token": "Yes",
                "logprob": -0.1,
                "bytes": None,
                "top_logprobs": [
                    {"token": "Yes", "logprob": -0.1, "bytes": None},
                    {"token": "No", "logprob": -2.5, "bytes": None},
                ],
            }
        ]
    }
    server = ScriptedServer(reply)
    model, _ = server.model()
    response = model.chat(ASK, top_logprobs=2)
    assert server.requests[0]["logprobs"] is True and server.requests[0]["top_logprobs"] == 2
    assert response.top_logprobs == [{"Yes": -0.1, "No": -2.5}]


def test_transient_errors_are_retried_with_growing_backoff() -> None:
    server = ScriptedServer(status(503), status(500), completion("ok"))
    model, sleeps = server.model(retry_policy=RetryPolicy(max_retries=2, base_delay_s=1.0, jitter=0))
    assert model.chat(ASK).text == "ok"
    assert sleeps == [1.0, 2.0]
    assert len(server.requests) == 3


def test_rate_limit_honours_retry_after() -> None:
    server = ScriptedServer(status(429, {"retry-after": "3"}), completion("ok"))
    model, sleeps = server.model()
    assert model.chat(ASK).text == "ok"
    assert sleeps == [3.0]


def test_retries_run_out_into_a_clear_error() -> None:
    server = ScriptedServer(status(503), status(503), status(503))
    model, sleeps = server.model(max_retries=2)
    with pytest.raises(LLMUnavailableError, match="503"):
        model.chat(ASK)
    assert len(sleeps) == 2 and len(server.requests) == 3


@pytest.mark.parametrize(
    ("code", "needle"), [(400, "rejected the request"), (401, "OPENAI_API_KEY"), (404, "/v1")]
)
def test_client_errors_are_not_retried(code: int, needle: str) -> None:
    server = ScriptedServer(status(code))
    model, sleeps = server.model()
    with pytest.raises(LLMError, match=needle) as raised:
        model.chat(ASK)
    assert not isinstance(raised.value, LLMUnavailableError)
    assert sleeps == [] and len(server.requests) == 1


def test_connection_refused_is_retried_then_unavailable() -> None:
    refused = http.ConnectError("[Errno 111] Connection refused")
    server = ScriptedServer(refused, refused, refused)
    model, sleeps = server.model(max_retries=2)
    with pytest.raises(LLMUnavailableError, match=r"cannot reach the LLM server at http://llm\.test/v1"):
        model.chat(ASK)
    assert len(sleeps) == 2


def test_read_timeout_is_not_retried() -> None:
    server = ScriptedServer(http.ReadTimeout("slow"))
    model, sleeps = server.model()
    with pytest.raises(LLMTimeoutError, match="did not answer within"):
        model.chat(ASK)
    assert sleeps == []


def test_structured_output_validates_and_sends_strict_schema() -> None:
    server = ScriptedServer(completion('{"answer": "yes", "confidence": 0.8}'))
    model, _ = server.model()
    assert model.structured(ASK, Verdict) == Verdict(answer="yes", confidence=0.8)
    response_format = server.requests[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Verdict"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == ["yes", "no"]
    assert schema["additionalProperties"] is False


def test_structured_output_tolerates_fences_and_thinking() -> None:
    server = ScriptedServer(completion('<think>hmm</think>```json\n{"answer": "no", "confidence": 1}\n```'))
    model, _ = server.model()
    assert model.structured(ASK, Verdict).answer == "no"


def test_structured_output_repairs_once_showing_the_error() -> None:
    server = ScriptedServer(
        completion('{"answer": "maybe", "confidence": 0.5}'),
        completion('{"answer": "no", "confidence": 0.5}'),
    )
    model, _ = server.model()
    assert model.structured(ASK, Verdict).answer == "no"
    repair = server.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"answer": "maybe", "confidence": 0.5}'}
    assert repair[-1]["role"] == "user"
    assert "answer" in repair[-1]["content"] and "'yes' or 'no'" in repair[-1]["content"]


def test_structured_output_gives_up_after_one_repair() -> None:
    server = ScriptedServer(completion("not json"), completion('{"answer": "yes"}'), completion("unused"))
    model, _ = server.model()
    with pytest.raises(StructuredOutputError, match="confidence"):
        model.structured(ASK, Verdict)
    assert len(server.requests) == 2


def test_stream_yields_answer_pieces_without_think_and_records_usage() -> None:
    deltas = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in ["<thi", "nk>rain?</th", "ink>", "\nYes", ", it", " is."]]
    usage = {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
    server = ScriptedServer(sse(deltas, usage=usage))
    model, _ = server.model()
    with model.open_stream(ASK) as stream:
        pieces = list(stream)
    assert "".join(pieces) == "Yes, it is."
    assert len(pieces) >= 3
    assert stream.response is not None
    assert stream.response.reasoning == "rain?"
    assert stream.response.usage.completion_tokens == 6
    assert stream.time_to_first_token_s is not None
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_stream_of_a_reasoning_model_with_server_split_reasoning() -> None:
    deltas = [{"reasoning_content": "thinking"}, {"content": "Yes"}, {"content": "."}]
    server = ScriptedServer(sse(deltas))
    model, _ = server.model(model="deepseek-ai/DeepSeek-R1-Distill-Llama-8B")
    assert "".join(model.stream(ASK)) == "Yes."


def test_stream_of_a_reasoning_model_with_unclosed_think() -> None:
    deltas = [{"content": c} for c in ["The user", " asks.", "</think>", "\n\nYes."]]
    server = ScriptedServer(sse(deltas))
    model, _ = server.model(model="deepseek-ai/DeepSeek-R1-Distill-Llama-8B")
    assert "".join(model.stream(ASK)) == "Yes."


def test_concurrent_use_from_threads_counts_every_request() -> None:
    server = ScriptedServer(*[completion("ok") for _ in range(40)])
    model, _ = server.model()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert model.chat(ASK).text == "ok"
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert model.usage.requests == 40
    assert model.usage_totals().completion_tokens == 200


def test_bad_input_fails_fast() -> None:
    with pytest.raises(ValueError, match="http"):
        OpenAIChatModel("localhost:8000/v1")
    model, _ = ScriptedServer().model()
    with pytest.raises(ValueError, match="empty"):
        model.chat([])


def test_create_chat_model_from_settings() -> None:
    with pytest.raises(LLMError, match="OPENAI_BASE_URL"):
        create_chat_model(LLMSettings())
    model = create_chat_model(LLMSettings(base_url="http://127.0.0.1:1/v1/", model="m", timeout_s=9))
    assert (model.base_url, model.model, model.timeout_s) == ("http://127.0.0.1:1/v1", "m", 9)


def test_stream_start_is_retried_on_transient_errors() -> None:
    server = ScriptedServer(status(503), sse([{"content": "ok"}]))
    model, sleeps = server.model()
    assert "".join(model.stream(ASK)) == "ok"
    assert len(sleeps) == 1


def test_stream_client_errors_are_clear() -> None:
    server = ScriptedServer(status(400))
    model, sleeps = server.model()
    with pytest.raises(LLMError, match="rejected the request"):
        list(model.stream(ASK))
    assert sleeps == []


def test_error_event_mid_stream_raises() -> None:
    body = sse([{"content": "partial"}]).replace(b"data: [DONE]", b'data: {"error": {"message": "boom"}}')
    model, _ = ScriptedServer(body).model()
    with pytest.raises(LLMError, match="boom"):
        list(model.stream(ASK))


def test_stream_without_usage_counts_chunks() -> None:
    model, _ = ScriptedServer(sse([{"content": "a"}, {"content": "b"}, {"content": "c"}])).model()
    with model.open_stream(ASK) as stream:
        assert "".join(stream) == "abc"
    assert stream.response is not None and stream.response.usage.completion_tokens == 3
