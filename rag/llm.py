"""LLM backends chosen by configuration, and the prompt that asks them for cited answers.

Configuration, lowest to highest precedence: a TOML file (``$RAG_CONFIG``, else
``~/.config/rag-assistant/config.toml``, table ``[llm]``), environment variables, then an explicit spec
such as ``rag ask --llm ollama:llama3.2``.

| setting      | TOML key      | environment            | meaning                                                   |
|--------------|---------------|------------------------|-----------------------------------------------------------|
| backend      | ``backend``   | ``RAG_LLM``            | ``extractive`` (default, no LLM), ``openai``, ``ollama``, ``gguf`` (``backend:model`` also works) |
| model        | ``model``     | ``RAG_LLM_MODEL``      | model name on the server, or a .gguf path for ``gguf``   |
| base URL     | ``base_url``  | ``RAG_LLM_BASE_URL``   | OpenAI-compatible server (llama.cpp server, vLLM, LM Studio, Ollama's /v1) or Ollama host |
| API key      | (never in a file) | ``RAG_LLM_API_KEY``, else ``OPENAI_API_KEY`` | sent to OpenAI-compatible servers      |
| temperature  | ``temperature`` | ``RAG_LLM_TEMPERATURE`` | 0 by default: answers should be repeatable              |
| max tokens   | ``max_tokens``  | ``RAG_LLM_MAX_TOKENS``  | answer length limit                                     |
| context size | ``context_tokens`` | ``RAG_LLM_CONTEXT_TOKENS`` | llama.cpp context window (``gguf`` only)          |

>>> LlmSettings.parse("ollama:llama3.2")
LlmSettings(backend='ollama', model='llama3.2', base_url=None, temperature=0.0, max_tokens=512, context_tokens=4096)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rag.types import Passage

__all__ = [
    "BACKENDS",
    "LlmConfigError",
    "LlmSettings",
    "answer_messages",
    "load_llm_settings",
    "make_chat_model",
]

BACKENDS = ("extractive", "openai", "ollama", "gguf")
CONFIG_ENV = "RAG_CONFIG"


class LlmConfigError(ValueError):
    """The LLM configuration is wrong or its backend's package is missing; the message says how to fix it."""


@dataclass(frozen=True)
class LlmSettings:
    """Which chat model answers, and how to reach it. ``backend="extractive"`` means no LLM."""

    backend: str = "extractive"
    model: str | None = None
    base_url: str | None = None
    temperature: float = 0.0
    max_tokens: int = 512
    context_tokens: int = 4096

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise LlmConfigError(f"unknown LLM backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.max_tokens < 1 or self.context_tokens < 1:
            raise LlmConfigError("max_tokens and context_tokens must be >= 1")

    @classmethod
    def parse(cls, spec: str, base: LlmSettings | None = None) -> LlmSettings:
        """Settings from ``backend[:model]``, e.g. ``openai:qwen2.5-7b`` or ``gguf:/models/x.gguf``."""
        backend, _, model = spec.strip().partition(":")
        base = base or cls()
        return replace(base, backend=backend.strip().lower(), model=model.strip() or base.model)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: LlmSettings | None = None) -> LlmSettings:
        """Settings from a TOML table; unknown keys are an error (a typo should not be ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise LlmConfigError(f"unknown [llm] settings {sorted(unknown)}; known: {sorted(known)}")
        settings = replace(base or cls(), **dict(values))
        if ":" in settings.backend and "model" not in values:
            settings = cls.parse(settings.backend, settings)
        return settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, base: LlmSettings | None = None) -> LlmSettings:
        """Settings from ``RAG_LLM*`` environment variables over ``base``."""
        environ = os.environ if environ is None else environ
        settings = base or cls()
        if environ.get("RAG_LLM"):
            settings = cls.parse(environ["RAG_LLM"], settings)
        changes: dict[str, Any] = {}
        for name, key, kind in (
            ("model", "RAG_LLM_MODEL", str),
            ("base_url", "RAG_LLM_BASE_URL", str),
            ("temperature", "RAG_LLM_TEMPERATURE", float),
            ("max_tokens", "RAG_LLM_MAX_TOKENS", int),
            ("context_tokens", "RAG_LLM_CONTEXT_TOKENS", int),
        ):
            if environ.get(key):
                try:
                    changes[name] = kind(environ[key])
                except ValueError:
                    raise LlmConfigError(f"{key}={environ[key]!r} is not a valid {kind.__name__}") from None
        return replace(settings, **changes)


def default_config_path() -> Path:
    """``$RAG_CONFIG``, else ``~/.config/rag-assistant/config.toml``."""
    configured = os.environ.get(CONFIG_ENV)
    if configured:
        return Path(configured).expanduser()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "rag-assistant" / "config.toml"


def load_llm_settings(spec: str | None = None, config_path: Path | None = None) -> LlmSettings:
    """The effective settings: config file, then environment, then ``spec`` (e.g. from ``--llm``).

    >>> load_llm_settings("extractive", Path("/nonexistent.toml")).backend
    'extractive'
    """
    path = config_path or default_config_path()
    settings = LlmSettings()
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("llm", {})
        except tomllib.TOMLDecodeError as error:
            raise LlmConfigError(f"{path}: {error}") from None
        settings = LlmSettings.from_mapping(table, settings)
    settings = LlmSettings.from_env(base=settings)
    return LlmSettings.parse(spec, settings) if spec else settings


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
    from rag.llamacpp import LlamaCppChatModel

    return LlamaCppChatModel.from_settings(settings)


SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. "
    "After every sentence, cite the passages that state it, as [1] or [2][3]. "
    "Use only facts that the passages state; do not add anything from memory. "
    "If the passages do not answer the question, reply exactly: The documents don't answer this question. "
    "Answer in at most three sentences."
)


def format_passages(passages: Sequence[Passage]) -> str:
    """The passages numbered as the answer must cite them: ``[1] (title, page 3) text``."""
    blocks = []
    for number, passage in enumerate(passages, start=1):
        where = passage.title or Path(passage.source).name
        if passage.page is not None:
            where += f", page {passage.page}"
        blocks.append(f"[{number}] ({where})\n{passage.text.strip()}")
    return "\n\n".join(blocks)


def answer_messages(question: str, passages: Sequence[Passage]) -> list[Any]:
    """The chat messages asking for a cited answer to ``question`` from ``passages``."""
    from langchain_core.messages import HumanMessage, SystemMessage

    return [
        SystemMessage(content=SYSTEM_PROMPT),
        HumanMessage(content=f"Passages:\n\n{format_passages(passages)}\n\nQuestion: {question}"),
    ]


def stream_text(llm: Any, messages: list[Any]) -> Iterator[str]:
    """The model's reply, piece by piece as it streams (token by token where the backend streams)."""
    for chunk in llm.stream(messages):
        content = chunk.content if hasattr(chunk, "content") else chunk
        if isinstance(content, list):  # content blocks
            content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
        if content:
            yield str(content)
