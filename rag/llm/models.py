"""The LangChain chat model a configuration names (OpenAI-compatible server, Ollama, local GGUF), and its streamed text.

>>> make_chat_model(LlmSettings()) is None   # the extractive backend needs no model
True
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from rag.llm.settings import LlmConfigError, LlmSettings

__all__ = ["make_chat_model", "stream_text"]


def _api_key() -> str:
    # OpenAI-compatible local servers ignore the key but the client requires one.
    return os.environ.get("RAG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"


def make_chat_model(settings: LlmSettings) -> Any:
    """The LangChain chat model ``settings`` name, or None for the extractive backend.

    Raises ``LlmConfigError`` with the install command when the backend's package is missing, or
    when a required setting (model, base URL, GGUF path) is absent.
    """
    if settings.backend == "extractive":
        return None
    if settings.backend == "openai":
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            raise LlmConfigError('langchain-openai is not installed: pip install "rag-assistant[llm]"') from None
        if not settings.model:
            raise LlmConfigError("the openai backend needs a model: RAG_LLM_MODEL or --llm openai:MODEL")
        return ChatOpenAI(
            model=settings.model,
            base_url=settings.base_url,
            api_key=_api_key(),
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            streaming=True,
        )
    if settings.backend == "ollama":
        try:
            from langchain_ollama import ChatOllama
        except ImportError:
            raise LlmConfigError('langchain-ollama is not installed: pip install "rag-assistant[llm]"') from None
        if not settings.model:
            raise LlmConfigError("the ollama backend needs a model: RAG_LLM_MODEL or --llm ollama:MODEL")
        options: dict[str, Any] = {"base_url": settings.base_url} if settings.base_url else {}
        return ChatOllama(
            model=settings.model, temperature=settings.temperature, num_predict=settings.max_tokens, **options
        )
    from rag.llm.llamacpp import LlamaCppChatModel

    return LlamaCppChatModel.from_settings(settings)


def stream_text(llm: Any, messages: list[Any]) -> Iterator[str]:
    """The model's reply, piece by piece as it streams (token by token where the backend streams)."""
    for chunk in llm.stream(messages):
        content = chunk.content if hasattr(chunk, "content") else chunk
        if isinstance(content, list):  # content blocks
            content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
        if content:
            yield str(content)
