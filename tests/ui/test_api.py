"""The answer endpoint through ``gradio_client``, as the README shows another program calling it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_ask_endpoint_returns_the_answer_with_citations_as_json(chat_server: str) -> None:
    from gradio_client import Client

    client = Client(chat_server, verbose=False)
    result = client.predict(question="How do I handle exceptions in Python?", api_name="/ask")

    assert set(result) >= {"text", "abstained", "citations", "unsupported_sentences", "passages"}
    assert not result["abstained"]
    assert result["citations"], result["text"]
    citation = result["citations"][0]
    assert f"[{citation['marker']}]" in result["text"]
    assert citation["end"] > citation["start"]
    assert citation["source"].endswith((".html", ".pdf", ".md", ".txt"))


def test_ask_endpoint_takes_history_and_settings(chat_server: str) -> None:
    from gradio_client import Client

    client = Client(chat_server, verbose=False)
    history = [
        {"role": "user", "content": "How do I handle exceptions in Python?"},
        {"role": "assistant", "content": "Use a try statement with an except clause. [1]"},
    ]
    result = client.predict(question="How do I raise one myself?", history=history, mode="bm25", k=3, api_name="/ask")
    assert len(result["passages"]) <= 3
    assert all(p["retriever"] == "bm25" for p in result["passages"])


def test_only_the_answer_endpoint_is_public(chat_server: str) -> None:
    from gradio_client import Client

    endpoints = Client(chat_server, verbose=False).view_api(print_info=False, return_format="dict")
    assert list(endpoints["named_endpoints"]) == ["/ask"]
    assert not endpoints["unnamed_endpoints"]


def test_ask_endpoint_rejects_bad_settings_with_a_message(chat_server: str) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="mode must be one of"):
        Client(chat_server, verbose=False).predict(question="anything", mode="fuzzy", api_name="/ask")
