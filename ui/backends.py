"""Answer backends the settings panel offers: the configured one first, and always the extractive answerer.

The configuration is ``rag.llm``'s (config file, then ``RAG_LLM*`` environment variables), read by
``rag.service.configured_backends``; a broken configuration costs the LLM option, with a one-line
warning, never the page.
"""

from __future__ import annotations

from rich.console import Console

from rag import service
from rag.llm import LlmConfigError
from rag.service import Backends


def configured_backends() -> Backends:
    """The configured backend first (the default choice), then the extractive answerer."""
    try:
        return service.configured_backends()
    except LlmConfigError as error:
        Console(stderr=True).print(f"[yellow]warning:[/yellow] LLM configuration ignored: {error}", highlight=False)
        return service.extractive_only()
