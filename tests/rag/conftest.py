"""Fixtures shared by the tests of the LLM backends."""

from __future__ import annotations

import pytest

from rag import Retriever

# Written for these tests: two short notes a tiny local model can be asked about.
LLM_NOTES = {
    "harbour.txt": "The council voted on Tuesday to rebuild the old lighthouse on the north pier. "
    "Mayor Ellen Quist said the work would begin in March and cost about two million euros.\n",
    "tea.txt": "Black tea leaves are rolled and then left to oxidise fully before they are dried in hot air.\n",
}


@pytest.fixture(scope="module")
def notes_retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    """A real index of ``LLM_NOTES``."""
    folder = tmp_path_factory.mktemp("notes")
    for name, text in LLM_NOTES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Retriever.build([folder], tmp_path_factory.mktemp("index") / "idx")
