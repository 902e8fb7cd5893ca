"""The answer backends the settings panel offers, and what the chat shows when an LLM fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.llm import LlmConfigError
from rag.service import EXTRACTIVE_LABEL, Backends
from ui.backends import configured_backends
from ui.chat import ChatHandlers
from ui.collections import CollectionManager


def test_without_configuration_only_the_extractive_answerer_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CONFIG", "/nonexistent/config.toml")
    monkeypatch.delenv("RAG_LLM", raising=False)
    assert configured_backends().labels == [EXTRACTIVE_LABEL]


def test_a_configured_llm_is_the_default_and_extractive_stays_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CONFIG", "/nonexistent/config.toml")
    monkeypatch.setenv("RAG_LLM", "openai:qwen2.5-7b")
    assert configured_backends().labels == ["LLM: qwen2.5-7b (openai)", EXTRACTIVE_LABEL]


def test_a_broken_configuration_falls_back_to_extractive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CONFIG", "/nonexistent/config.toml")
    monkeypatch.setenv("RAG_LLM", "telepathy")
    assert configured_backends().labels == [EXTRACTIVE_LABEL]


class _DownServer:
    """A chat model whose server does not answer."""

    def stream(self, messages: list) -> None:
        raise RuntimeError("Connection refused (127.0.0.1:8080)")


def _final_message(handlers: ChatHandlers, backend: str, root: Path) -> str:
    steps = list(handlers.respond("What do tomatoes need?", [], {}, str(root / "notes"), "hybrid", 3, backend))
    return steps[-1][0]["value"][-1]["content"]  # the last step is the chatbot update with thumbs


def test_an_llm_that_is_down_is_reported_in_the_chat(notes_root: Path) -> None:
    backends = Backends({"LLM: local": _DownServer, EXTRACTIVE_LABEL: lambda: None})
    handlers = ChatHandlers(CollectionManager(notes_root, notes_root / "notes"), backends)
    message = _final_message(handlers, "LLM: local", notes_root)
    assert "Could not answer" in message and "Connection refused" in message


def test_an_llm_that_cannot_be_made_says_how_to_fix_it(notes_root: Path) -> None:
    def missing_package() -> None:
        raise LlmConfigError('langchain-openai is not installed: pip install "rag-assistant[llm]"')

    backends = Backends({"LLM: local": missing_package, EXTRACTIVE_LABEL: lambda: None})
    handlers = ChatHandlers(CollectionManager(notes_root, notes_root / "notes"), backends)
    assert "pip install" in _final_message(handlers, "LLM: local", notes_root)
