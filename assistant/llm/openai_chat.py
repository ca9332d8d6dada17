"""``ChatModel`` over any OpenAI-compatible chat API: vLLM in production, llama.cpp embedded.

One ``OpenAIChatModel`` may be shared by many threads: the underlying ``openai`` client keeps a
thread-safe connection pool, and the usage counters are guarded by a lock.

Failure behaviour, so that no call hangs and every error says what to check:

* the connect timeout (``connect_timeout_s``) bounds reaching the server, the read timeout
  (``timeout_s``) bounds each wait for bytes from it;
* transient failures (unreachable, 429, 5xx) are retried with exponential backoff
  (``max_retries``), then raise ``LLMUnavailableError`` / ``LLMError``;
* a read timeout raises ``LLMTimeoutError`` at once (see ``retry.py`` for why);
* other HTTP errors raise ``LLMError`` with the server's message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import openai
from pydantic import BaseModel

from assistant.llm._http import CONNECT_TIMEOUT_ERRORS, TIMEOUT_ERRORS, TRANSPORT_ERRORS, http
from assistant.llm.base import (
    ChatMessage,
    ChatResponse,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    StructuredOutputError,
    TokenUsage,
)
from assistant.llm.retry import RetryableError, RetryPolicy, call_with_retries
from assistant.llm.sse import parse_events
from assistant.llm.structured import (
    InvalidStructuredOutput,
    parse_structured,
    repair_message,
    response_format_for,
)
from assistant.llm.thinking import ThinkSplitter, split_think, starts_inside_think

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R")

ThinkMode = Literal["auto", "implicit", "explicit"]
MessageLike = ChatMessage | Mapping[str, str]

# Fields in which servers return reasoning they split off themselves (llama.cpp and older vLLM
# use ``reasoning_content``; newer vLLM ``reasoning``).
_REASONING_FIELDS = ("reasoning_content", "reasoning")


def _message_dicts(messages: Sequence[MessageLike]) -> list[dict[str, str]]:
    if not messages:
        raise ValueError("messages must not be empty")
    out = []
    for message in messages:
        if isinstance(message, ChatMessage):
            out.append({"role": message.role, "content": message.content})
        else:
            out.append(ChatMessage.model_validate(dict(message)).model_dump())
    return out


def _reasoning_field(delta: Mapping[str, Any]) -> str | None:
    for name in _REASONING_FIELDS:
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _extra_text(obj: object | None) -> str | None:
    """Reasoning text a server returned beside the content, if any."""
    if obj is None:
        return None
    extra = getattr(obj, "model_extra", None) or {}
    for name in _REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _join_reasoning(*parts: str | None) -> str | None:
    text = "\n".join(part.strip() for part in parts if part and part.strip())
    return text or None


def _retry_after_s(response: http.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class UsageCounter:
    """Cumulative token usage of one client, safe to update from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.requests = 0

    def add(self, usage: TokenUsage) -> None:
        with self._lock:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.requests += 1

    def snapshot(self) -> TokenUsage:
        with self._lock:
            return TokenUsage(prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)


class ChatStream:
    """Answer text pieces of one streamed reply; afterwards ``response`` holds the whole reply.

    Iterate it once. ``<think>`` content is kept out of the pieces and collected in
    ``response.reasoning``. Closing it (or leaving a ``with`` block) ends the HTTP request.
    """

    def __init__(
        self,
        owner: OpenAIChatModel,
        lines: Iterator[str],
        close: Callable[[], None],
        *,
        started: float,
        implicit_think: bool,
    ) -> None:
        self._owner = owner
        self._lines = lines
        self._close = close
        self._started = started
        self._splitter = ThinkSplitter(implicit_open=implicit_think)
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self._server_reasoning: list[str] = []
        self.response: ChatResponse | None = None
        self.time_to_first_token_s: float | None = None
        self._consumed = False

    def __iter__(self) -> Iterator[str]:
        if self._consumed:
            raise RuntimeError("a ChatStream can be iterated only once")
        self._consumed = True
        usage: TokenUsage | None = None
        finish_reason: str | None = None
        model = self._owner.model
        chunks = 0
        try:
            for event in self._owner._guard_stream(parse_events(self._lines)):
                chunk = event.json()
                if not isinstance(chunk, dict):
                    continue
                if event.event == "error" or "error" in chunk:
                    raise LLMError(f"the LLM server at {self._owner.base_url} failed mid-reply: {chunk}")
                model = chunk.get("model") or model
                if chunk.get("usage"):
                    usage = TokenUsage(
                        prompt_tokens=chunk["usage"].get("prompt_tokens") or 0,
                        completion_tokens=chunk["usage"].get("completion_tokens") or 0,
                    )
                if not chunk.get("choices"):
                    continue
                choice = chunk["choices"][0]
                finish_reason = choice.get("finish_reason") or finish_reason
                delta = choice.get("delta") or {}
                server_reasoning = _reasoning_field(delta)
                if server_reasoning:
                    self._mark_first_token()
                    self._server_reasoning.append(server_reasoning)
                    # The server splits reasoning itself: the content is all answer.
                    yield from self._pieces(self._splitter.server_splits())
                content = delta.get("content")
                if content:
                    chunks += 1
                    self._mark_first_token()
                    yield from self._pieces(self._splitter.feed(content))
            yield from self._pieces(self._splitter.finish())
        finally:
            self.close()
        if usage is None:
            # Servers without stream usage: about one token per content chunk.
            usage = TokenUsage(completion_tokens=chunks)
        self._owner.usage.add(usage)
        self.response = ChatResponse(
            text="".join(self._answer).strip(),
            reasoning=_join_reasoning("".join(self._server_reasoning), "".join(self._reasoning)),
            usage=usage,
            model=model,
            finish_reason=finish_reason,
            latency_s=time.perf_counter() - self._started,
        )

    def _mark_first_token(self) -> None:
        if self.time_to_first_token_s is None:
            self.time_to_first_token_s = time.perf_counter() - self._started

    def _pieces(self, pieces: Sequence[tuple[str, str]]) -> Iterator[str]:
        for kind, text in pieces:
            if kind == "answer":
                self._answer.append(text)
                yield text
            else:
                self._reasoning.append(text)

    def close(self) -> None:
        self._close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class OpenAIChatModel:
    """The ``ChatModel`` protocol over an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str = "smollm2-135m-instruct",
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        temperature: float = 0.0,
        max_tokens: int | None = 512,
        think_mode: ThinkMode = "auto",
        retry_policy: RetryPolicy | None = None,
        http_client: http.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"LLM base URL must start with http:// or https://, got {base_url!r}")
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("LLM timeouts must be positive")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.default_temperature = temperature
        self.default_max_tokens = max_tokens
        self.think_mode: ThinkMode = think_mode
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max(0, max_retries))
        self.usage = UsageCounter()
        self._sleep = sleep
        self._timeout = http.Timeout(timeout_s, connect=connect_timeout_s)
        # Retries are ours (retry.py): the client's own would retry read timeouts and 4xx too.
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=api_key or "not-needed",
            timeout=self._timeout,
            max_retries=0,
            http_client=http_client,
        )

    # -- the ChatModel protocol ---------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[MessageLike],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        cache_prompt: bool = True,
        top_logprobs: int | None = None,
    ) -> ChatResponse:
        request = self._request(
            messages, temperature, max_tokens, stop=stop, cache_prompt=cache_prompt, top_logprobs=top_logprobs
        )
        return self._complete(request)

    def stream(
        self,
        messages: Sequence[MessageLike],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        cache_prompt: bool = True,
    ) -> Iterator[str]:
        """Yield answer text pieces as they arrive (<think> content is not yielded)."""
        with self.open_stream(
            messages, temperature=temperature, max_tokens=max_tokens, cache_prompt=cache_prompt
        ) as chat_stream:
            yield from chat_stream

    def structured(
        self,
        messages: Sequence[MessageLike],
        schema: type[T],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        cache_prompt: bool = True,
    ) -> T:
        """Ask for JSON matching the schema, validate it, repair once, else StructuredOutputError."""
        conversation = _message_dicts(messages)
        problem = ""
        for attempt in range(2):
            request = self._request(
                conversation, temperature, max_tokens, stop=None, cache_prompt=cache_prompt, top_logprobs=None
            )
            request["response_format"] = response_format_for(schema)
            reply = self._complete(request)
            try:
                return parse_structured(reply.text, schema, truncated=reply.finish_reason == "length")
            except InvalidStructuredOutput as error:
                problem = str(error)
                log.info("structured %s invalid (try %d): %s", schema.__name__, attempt + 1, problem)
                # Show the model its own reply and what is wrong with it: one repair.
                conversation = [
                    *conversation,
                    {"role": "assistant", "content": reply.text},
                    {"role": "user", "content": repair_message(problem, schema)},
                ]
        raise StructuredOutputError(
            f"the model's reply did not match {schema.__name__} even after one repair: {problem}"
        )

    # -- beyond the protocol --------------------------------------------------------------------

    def open_stream(
        self,
        messages: Sequence[MessageLike],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: Sequence[str] | None = None,
        cache_prompt: bool = True,
    ) -> ChatStream:
        """Start a streamed reply; iterate the result for answer pieces, then read ``.response``."""
        request = self._request(
            messages, temperature, max_tokens, stop=stop, cache_prompt=cache_prompt, top_logprobs=None
        )
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        # The raw response, parsed by sse.py: the client's typed chunks cost ~25x more CPU.
        manager = self._client.chat.completions.with_streaming_response.create(**request)
        response = self._call(manager.__enter__)
        return ChatStream(
            self,
            response.iter_lines(),
            lambda: manager.__exit__(None, None, None),
            started=started,
            implicit_think=self._implicit_think(),
        )

    def list_models(self, timeout_s: float = 3.0) -> list[str]:
        """Model ids the server offers; a cheap reachability check (no retries)."""
        client = self._client.with_options(timeout=http.Timeout(timeout_s), max_retries=0)
        try:
            page = client.models.list()
        except openai.APIError as error:
            raise _final(self._translate(error)) from error
        return [item.id for item in page.data]

    def usage_totals(self) -> TokenUsage:
        """Tokens used by all requests of this client so far."""
        return self.usage.snapshot()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAIChatModel(base_url={self.base_url!r}, model={self.model!r})"

    # -- internals ------------------------------------------------------------------------------

    def _implicit_think(self) -> bool:
        if self.think_mode == "auto":
            return starts_inside_think(self.model)
        return self.think_mode == "implicit"

    def _request(
        self,
        messages: Sequence[MessageLike],
        temperature: float | None,
        max_tokens: int | None,
        *,
        stop: Sequence[str] | None,
        cache_prompt: bool,
        top_logprobs: int | None,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": _message_dicts(messages),
            "temperature": self.default_temperature if temperature is None else temperature,
        }
        tokens = self.default_max_tokens if max_tokens is None else max_tokens
        if tokens is not None:
            request["max_tokens"] = tokens
        if stop:
            request["stop"] = list(stop)
        if top_logprobs is not None:
            if top_logprobs < 0:
                raise ValueError("top_logprobs must be >= 0")
            request["logprobs"] = True
            request["top_logprobs"] = top_logprobs
        if not cache_prompt:
            # llama.cpp reuses cached prompt state by default, which makes near-tie answers
            # depend on earlier requests. vLLM ignores the unknown field (with a log warning),
            # so it is only sent when needed.
            request["extra_body"] = {"cache_prompt": False}
        return request

    def _complete(self, request: dict[str, Any]) -> ChatResponse:
        started = time.perf_counter()
        completion = self._call(lambda: self._client.chat.completions.create(**request))
        latency = time.perf_counter() - started
        if not completion.choices:
            raise LLMError(f"the LLM server at {self.base_url} returned no choices")
        choice = completion.choices[0]
        raw_text = choice.message.content or ""
        answer, tagged_reasoning = split_think(raw_text)
        usage = TokenUsage(
            prompt_tokens=completion.usage.prompt_tokens if completion.usage else 0,
            completion_tokens=completion.usage.completion_tokens if completion.usage else 0,
        )
        self.usage.add(usage)
        return ChatResponse(
            text=answer,
            reasoning=_join_reasoning(_extra_text(choice.message), tagged_reasoning),
            usage=usage,
            model=completion.model or self.model,
            finish_reason=choice.finish_reason,
            latency_s=latency,
            top_logprobs=self._top_logprobs(choice) if "logprobs" in request else None,
        )

    @staticmethod
    def _top_logprobs(choice: Any) -> list[dict[str, float]] | None:
        if choice.logprobs is None or not choice.logprobs.content:
            return None
        out = []
        for token in choice.logprobs.content:
            alternatives = {alt.token: alt.logprob for alt in (token.top_logprobs or [])}
            out.append(alternatives or {token.token: token.logprob})
        return out

    def _call(self, call: Callable[[], R]) -> R:
        def attempt() -> R:
            try:
                return call()
            except openai.APIError as error:
                raise self._translate(error) from error

        return call_with_retries(attempt, self.retry_policy, sleep=self._sleep)

    def _translate(self, error: openai.APIError) -> Exception:
        """Map a client error to a medkg LLM error; transient ones wrapped in RetryableError."""
        url = self.base_url
        if isinstance(error, openai.APITimeoutError):
            if isinstance(error.__cause__, CONNECT_TIMEOUT_ERRORS):
                reason = f"connecting timed out after {self.connect_timeout_s:g}s"
                return RetryableError(self._unavailable(reason))
            return LLMTimeoutError(
                f"the LLM server at {url} did not answer within {self.timeout_s:g}s; "
                "it may be overloaded or the reply too long: raise MEDKG_LLM__TIMEOUT_S or lower max_tokens"
            )
        if isinstance(error, openai.APIConnectionError):
            return RetryableError(self._unavailable(str(error.__cause__ or error)))
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            detail = _short(error.message)
            if status == 429:
                return RetryableError(
                    LLMUnavailableError(f"the LLM server at {url} is overloaded (429): {detail}"),
                    _retry_after_s(error.response),
                )
            if status >= 500:
                cls = LLMUnavailableError if status in (502, 503, 504) else LLMError
                failure = cls(f"the LLM server at {url} failed ({status}): {detail}")
                return RetryableError(failure, _retry_after_s(error.response))
            if status in (401, 403):
                return LLMError(
                    f"the LLM server at {url} refused the API key ({status}): set OPENAI_API_KEY "
                    "(or MEDKG_LLM__API_KEY)"
                )
            if status == 404:
                return LLMError(
                    f"the LLM server at {url} answered 404 ({detail}): check that the base URL ends in /v1 "
                    f"and that the model {self.model!r} is served (set MEDKG_LLM__MODEL)"
                )
            return LLMError(f"the LLM server at {url} rejected the request ({status}): {detail}")
        return LLMError(f"LLM request to {url} failed: {error}")

    def _unavailable(self, reason: str) -> LLMUnavailableError:
        return LLMUnavailableError(
            f"cannot reach the LLM server at {self.base_url} ({reason}): is it running? "
            "Set OPENAI_BASE_URL (or MEDKG_LLM__BASE_URL) to a running OpenAI-compatible server, "
            "or start the embedded one with `medkg llm serve`"
        )

    def _guard_stream(self, raw: Iterator[R]) -> Iterator[R]:
        """Iterate a stream, turning transport failures mid-reply into medkg errors."""
        try:
            yield from raw
        except TIMEOUT_ERRORS as error:
            raise LLMTimeoutError(
                f"the LLM server at {self.base_url} stopped sending for {self.timeout_s:g}s mid-reply; "
                "raise MEDKG_LLM__TIMEOUT_S if it is just slow"
            ) from error
        except TRANSPORT_ERRORS as error:
            raise self._unavailable(f"connection lost mid-reply: {error}") from error
        except openai.APIError as error:
            raise _final(self._translate(error)) from error


def _final(error: Exception) -> Exception:
    """The error a caller sees: a transient one unwrapped (no retries left here)."""
    return error.final if isinstance(error, RetryableError) else error


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
