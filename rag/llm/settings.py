"""Which LLM backend answers: settings read from a config file, the environment and ``--llm``.

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
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["BACKENDS", "LlmConfigError", "LlmSettings", "default_config_path", "load_llm_settings"]

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
