"""The LLM layer: one client for any OpenAI-compatible chat server (vLLM, llama.cpp, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.llm.base import (
    ChatMessage,
    ChatModel,
    ChatResponse,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
    StructuredOutputError,
    TokenUsage,
)
from assistant.llm.openai_chat import ChatStream, OpenAIChatModel

if TYPE_CHECKING:
    from assistant.settings import LLMSettings

__all__ = [
    "ChatMessage",
    "ChatModel",
    "ChatResponse",
    "ChatStream",
    "LLMError",
    "LLMTimeoutError",
    "LLMUnavailableError",
    "OpenAIChatModel",
    "StructuredOutputError",
    "TokenUsage",
    "create_chat_model",
]


def create_chat_model(llm: LLMSettings) -> OpenAIChatModel:
    """The chat model the settings describe; ``llm.base_url`` must point at a running server."""
    if not llm.base_url:
        raise LLMError(
            "no LLM server configured (settings.llm.base_url is empty): set OPENAI_BASE_URL "
            "(or MEDKG_LLM__BASE_URL) to an OpenAI-compatible server, or start the embedded one "
            "(`medkg llm serve`, or assistant.app.open_app, which starts the embedded one)"
        )
    if llm.fallback_urls:
        from assistant.llm.failover import FailoverChatModel

        return FailoverChatModel(
            [llm.base_url, *llm.fallback_urls],
            cooldown_s=llm.fallback_cooldown_s,
            model=llm.model,
            api_key=llm.api_key.get_secret_value(),
            timeout_s=llm.timeout_s,
            connect_timeout_s=llm.connect_timeout_s,
            max_retries=llm.max_retries,
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
        )
    return OpenAIChatModel(
        base_url=llm.base_url,
        model=llm.model,
        api_key=llm.api_key.get_secret_value(),
        timeout_s=llm.timeout_s,
        connect_timeout_s=llm.connect_timeout_s,
        max_retries=llm.max_retries,
        temperature=llm.temperature,
        max_tokens=llm.max_tokens,
    )
