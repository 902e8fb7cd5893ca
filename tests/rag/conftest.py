"""Fixtures and checks shared by the tests of `rag ask` and the LLM backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import Retriever
from rag.answering.assistant import Assistant
from rag.types import Answer

# Written for these tests: two short notes to ask a tiny local model (or `rag ask`) about.
NOTES = {
    "harbour.txt": "The council voted on Tuesday to rebuild the old lighthouse on the north pier. "
    "Mayor Ellen Quist said the work would begin in March and cost about two million euros.\n",
    "tea.txt": "Black tea leaves are rolled and then left to oxidise fully before they are dried in hot air.\n",
}


def index_of(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write ``files`` (name: text) into a fresh folder and build a real index of it; returns the index folder."""
    folder = tmp_path_factory.mktemp("docs")
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    index_dir = tmp_path_factory.mktemp("index") / "idx"
    Retriever.build([folder], index_dir)
    return index_dir


@pytest.fixture(scope="module")
def notes_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index of ``NOTES``, built once a test module."""
    return index_of(NOTES, tmp_path_factory)


@pytest.fixture(scope="module")
def notes_retriever(notes_index_dir: Path) -> Retriever:
    return Retriever.open(notes_index_dir)


def streamed_llm_answer(assistant: Assistant, question: str) -> Answer:
    """Stream ``question`` through an LLM-backed assistant; check it streamed and its citations were verified."""
    deltas = list(assistant.stream(question))
    answer = deltas[-1].answer
    assert answer is not None
    assert len(deltas) > 3, "expected the reply token by token"
    assert "".join(d.text for d in deltas[:-1]).strip()
    for citation in answer.citations:
        assert 1 <= citation.marker <= len(answer.passages)
        assert citation.quote in " ".join(answer.passages[citation.marker - 1].text.split())
    # A citation that fails the check is never passed off as support: its sentence is flagged,
    # unless another of its citations supports it.
    if answer.citations and not any(c.supported for c in answer.citations):
        assert answer.unsupported_sentences
    return answer
