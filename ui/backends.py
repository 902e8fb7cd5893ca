"""Answer backends the settings panel offers: the configured one first, and always the extractive answerer.

The configuration is ``rag.llm``'s (config file, then ``RAG_LLM*`` environment variables); a broken
configuration costs the LLM option, with a one-line warning, never the page.
"""

from __future__ import annotations

from rich.console import Console

from rag.llm import LlmConfigError, LlmSettings, load_llm_settings, make_chat_model
from ui.chat import EXTRACTIVE_LABEL, Backends, LlmFactory


def backend_label(settings: LlmSettings) -> str:
    """How the settings panel names a configured LLM.

    >>> backend_label(LlmSettings.parse("ollama:llama3.2"))
    'LLM: llama3.2 (ollama)'
    """
    return f"LLM: {settings.model or 'default model'} ({settings.backend})"


def configured_backends() -> Backends:
    """The configured backend first (the default choice), then the extractive answerer."""
    extractive: dict[str, LlmFactory] = {EXTRACTIVE_LABEL: lambda: None}
    try:
        settings = load_llm_settings()
    except LlmConfigError as error:
        Console(stderr=True).print(f"[yellow]warning:[/yellow] LLM configuration ignored: {error}", highlight=False)
        return Backends(extractive)
    if settings.backend == "extractive":
        return Backends(extractive)
    # The model is made on first use, so a slow local model does not delay the page.
    return Backends({backend_label(settings): lambda: make_chat_model(settings), **extractive})
