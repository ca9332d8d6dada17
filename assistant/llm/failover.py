"""Client-side failover over several OpenAI-compatible servers serving the same model.

``FailoverChatModel`` is an ``OpenAIChatModel`` whose requests go to the first server that is
not cooling down; when a server cannot be reached, or answers 5xx / 429 after its own retries,
the same request goes to the next one, and the failed server is skipped for ``cooldown_s``
(then tried first again: the configured order is the preference). Client errors (4xx), read
timeouts and invalid structured output are not retried elsewhere: another server would fail
the same way or double the wait. A stream switches servers only before its first piece.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from assistant.llm.base import LLMError, LLMUnavailableError, TokenUsage
from assistant.llm.openai_chat import ChatStream, OpenAIChatModel

log = logging.getLogger(__name__)

R = TypeVar("R")

# The client's wording for a 5xx that is not 502/503/504 (openai_chat._translate).
_SERVER_FAILURE = re.compile(r"failed \(5\d\d\)")


def is_server_failure(error: LLMError) -> bool:
    """True when another server may succeed: unreachable, overloaded, or failing inside."""
    return isinstance(error, LLMUnavailableError) or (
        type(error) is LLMError and _SERVER_FAILURE.search(str(error)) is not None
    )


class FailoverChatModel(OpenAIChatModel):
    def __init__(self, base_urls: Sequence[str], *, cooldown_s: float = 30.0, **kwargs: Any) -> None:
        if not base_urls:
            raise ValueError("FailoverChatModel needs at least one base URL")
        super().__init__(base_urls[0], **kwargs)
        self.backends = [OpenAIChatModel(url, **kwargs) for url in base_urls]
        self.cooldown_s = cooldown_s
        self._down_until = [0.0] * len(self.backends)
        self._guard = threading.Lock()

    # Every request path of OpenAIChatModel (chat, structured) ends in _complete; streams
    # start in open_stream.
    def _complete(self, request: dict[str, Any]) -> Any:
        return self._failover(lambda backend: backend._complete(request))

    def open_stream(self, messages: Sequence[Any], **kwargs: Any) -> ChatStream:
        return self._failover(lambda backend: backend.open_stream(messages, **kwargs))

    def list_models(self, timeout_s: float = 3.0) -> list[str]:
        return self._failover(lambda backend: backend.list_models(timeout_s))

    def usage_totals(self) -> TokenUsage:
        totals = [backend.usage_totals() for backend in self.backends]
        return TokenUsage(
            prompt_tokens=sum(t.prompt_tokens for t in totals),
            completion_tokens=sum(t.completion_tokens for t in totals),
        )

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
        super().close()

    def __repr__(self) -> str:
        urls = [backend.base_url for backend in self.backends]
        return f"FailoverChatModel(base_urls={urls!r}, model={self.model!r})"

    def _order(self) -> list[int]:
        """Servers that are up in the configured order, then those cooling down (soonest first)."""
        now = time.monotonic()
        with self._guard:
            up = [i for i, until in enumerate(self._down_until) if until <= now]
            down = sorted(
                (i for i in range(len(self.backends)) if i not in up), key=self._down_until.__getitem__
            )
        return up + down

    def _failover(self, call: Callable[[OpenAIChatModel], R]) -> R:
        last: LLMError | None = None
        for i in self._order():
            backend = self.backends[i]
            try:
                result = call(backend)
            except LLMError as error:
                if not is_server_failure(error):
                    raise
                with self._guard:
                    self._down_until[i] = time.monotonic() + self.cooldown_s
                log.warning(
                    "LLM server %s failed (%s); trying the next one", backend.base_url, type(error).__name__
                )
                last = error
                continue
            with self._guard:
                self._down_until[i] = 0.0
            return result
        assert last is not None
        raise last
