"""The ``ChatModel`` boundary: the OpenAI-compatible chat API as medkg uses it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

T = TypeVar("T", bound=BaseModel)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class TokenUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatResponse(BaseModel):
    text: str  # the answer, with any <think> block removed
    reasoning: str | None = None  # the removed <think> content (reasoning models)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str = ""
    finish_reason: str | None = None
    latency_s: float = 0.0
    # per generated token: list of (token, logprob) alternatives, when asked for
    top_logprobs: list[dict[str, float]] | None = None


class LLMError(RuntimeError):
    """Base of LLM failures; the message says what to check."""


class LLMUnavailableError(LLMError):
    """The server cannot be reached."""


class LLMTimeoutError(LLMError):
    """The server did not answer in time."""


class StructuredOutputError(LLMError):
    """The model's output did not validate against the schema, even after one repair."""


@runtime_checkable
class ChatModel(Protocol):
    model: str

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        cache_prompt: bool = True,
        top_logprobs: int | None = None,
    ) -> ChatResponse: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[str]:
        """Yield answer text pieces as they arrive (<think> content is not yielded)."""

    def structured(
        self,
        messages: Sequence[ChatMessage],
        schema: type[T],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> T:
        """Ask for JSON matching the schema, validate it, repair once, else StructuredOutputError."""
