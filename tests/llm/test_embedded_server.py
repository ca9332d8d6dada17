"""The LLM layer against the real embedded llama.cpp server (and real sockets for failures)."""

from __future__ import annotations

import time
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from assistant.llm import (
    ChatMessage,
    ChatModel,
    LLMTimeoutError,
    LLMUnavailableError,
    OpenAIChatModel,
    create_chat_model,
)
from assistant.processes.supervisor import free_port
from assistant.settings import LLMSettings

QUESTION = [
    ChatMessage(role="system", content="You are a concise assistant."),
    ChatMessage(role="user", content="What is the capital of France?"),
]


class YesNo(BaseModel):
    answer: Literal["yes", "no"]
    confidence: float = Field(ge=0, le=1)


@pytest.mark.integration
def test_chat_reply(chat_model: OpenAIChatModel) -> None:
    assert isinstance(chat_model, ChatModel)
    before = chat_model.usage_totals().total_tokens
    reply = chat_model.chat(QUESTION, max_tokens=24, cache_prompt=False)
    assert reply.text.strip()
    assert "<think>" not in reply.text
    assert reply.usage.prompt_tokens > 5
    assert 0 < reply.usage.completion_tokens <= 24
    assert reply.finish_reason in {"stop", "length"}
    assert chat_model.usage_totals().total_tokens == before + reply.usage.total_tokens


@pytest.mark.integration
def test_streamed_reply(chat_model: OpenAIChatModel) -> None:
    with chat_model.open_stream(QUESTION, max_tokens=24, cache_prompt=False) as stream:
        pieces = list(stream)
    assert len(pieces) >= 3
    assert stream.response is not None
    assert "".join(pieces).strip() == stream.response.text
    assert stream.response.text
    assert stream.response.usage.completion_tokens >= len(pieces)
    assert stream.time_to_first_token_s is not None
    assert stream.time_to_first_token_s < stream.response.latency_s


@pytest.mark.integration
def test_stream_protocol_method_matches_chat(chat_model: OpenAIChatModel) -> None:
    # Same prompt, temperature 0, no cached state: streaming must not change the answer.
    streamed = "".join(chat_model.stream(QUESTION, max_tokens=16, cache_prompt=False)).strip()
    whole = chat_model.chat(QUESTION, max_tokens=16, cache_prompt=False).text
    assert streamed == whole


@pytest.mark.integration
def test_structured_reply_validates(chat_model: OpenAIChatModel) -> None:
    ask = "Is Paris in France? Answer with yes or no and a confidence from 0 to 1."
    messages = [ChatMessage(role="user", content=ask)]
    verdict = chat_model.structured(messages, YesNo, max_tokens=48)
    assert isinstance(verdict, YesNo)
    assert verdict.answer in {"yes", "no"}
    assert 0 <= verdict.confidence <= 1


@pytest.mark.integration
def test_top_logprobs_from_the_server(chat_model: OpenAIChatModel) -> None:
    reply = chat_model.chat(QUESTION, max_tokens=4, top_logprobs=3, cache_prompt=False)
    assert reply.top_logprobs is not None
    assert len(reply.top_logprobs) == reply.usage.completion_tokens
    assert all(1 <= len(alternatives) <= 3 for alternatives in reply.top_logprobs)
    assert all(lp <= 0 for alternatives in reply.top_logprobs for lp in alternatives.values())


@pytest.mark.integration
def test_create_chat_model_talks_to_the_server(llm_url: str) -> None:
    with create_chat_model(LLMSettings(base_url=llm_url, max_tokens=8)) as model:
        assert model.chat(QUESTION).text


def test_server_down_is_a_quick_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAIChatModel(url, max_retries=2)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match=f"cannot reach the LLM server at {url}.*OPENAI_BASE_URL"):
        model.chat(QUESTION)
    assert time.monotonic() - started < 5
    with pytest.raises(LLMUnavailableError):
        list(model.stream(QUESTION))


def test_silent_server_times_out_instead_of_hanging(silent_llm_url: str) -> None:
    model = OpenAIChatModel(silent_llm_url, timeout_s=0.5, connect_timeout_s=1, max_retries=2)
    for call in (lambda: model.chat(QUESTION), lambda: list(model.stream(QUESTION))):
        started = time.monotonic()
        with pytest.raises(LLMTimeoutError, match=r"did not answer within 0\.5s"):
            call()
        assert time.monotonic() - started < 3
