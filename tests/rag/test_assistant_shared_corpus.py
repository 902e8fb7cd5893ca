"""End to end over ../shared/corpus (HTML tutorial, PDFs, Node.js Markdown, a news article): right answers,
valid citations, a follow-up, abstention. The corpus mixes headings, link lists and code with prose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag import Retriever
from rag.answering.assistant import Assistant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def assistant(shared_corpus_index: Path) -> Assistant:
    return Assistant(Retriever.open(shared_corpus_index))


def _check_citations(assistant: Assistant, answer) -> None:
    assert answer.citations, answer.text
    for citation in answer.citations:
        assert citation.supported
        assert f"[{citation.marker}]" in answer.text
        document = assistant.retriever.store.get_document(citation.document_id)
        assert " ".join(document.text[citation.start : citation.end].split()) == citation.quote


@pytest.mark.parametrize(
    ("question", "expected", "source"),
    [
        ("How do I define a default argument value?", "default value for one or more arguments", "controlflow"),
        ("When is the default value evaluated?", "evaluated only once", "controlflow"),
        ("How do I listen for an event only once?", ("eventEmitter.once()", "`once` listener"), "events.md"),
        ("What does the break statement do?", "innermost enclosing", "controlflow"),
        ("Who confirmed that the US and China will begin AI safety talks?", "Bessent", "us-china-ai-safety-talks"),
    ],
)
def test_answers_cite_the_right_document(
    assistant: Assistant, question: str, expected: str | tuple[str, ...], source: str
) -> None:
    answer = assistant.ask(question)
    assert any(phrase in answer.text for phrase in ((expected,) if isinstance(expected, str) else expected))
    assert any(source in Path(c.source).name for c in answer.citations)
    _check_citations(assistant, answer)
    prose = re.sub(r"```.*?```", " ", answer.text, flags=re.DOTALL)  # a how-to answer's example is not counted
    assert len(prose.split()) < 120


def test_follow_up_about_the_same_person(assistant: Assistant) -> None:
    question = "Who confirmed that the US and China will begin AI safety talks?"
    first = assistant.ask(question)
    history = [{"role": "user", "content": question}, {"role": "assistant", "content": first.text}]
    follow_up = assistant.ask("Where was he when he said it?", history=history)
    assert "Beijing" in follow_up.text
    _check_citations(assistant, follow_up)


@pytest.mark.parametrize("question", ["What is the capital of Peru?", "How do I bake sourdough bread?"])
def test_questions_outside_the_corpus_are_declined(assistant: Assistant, question: str) -> None:
    answer = assistant.ask(question)
    assert answer.abstained and not answer.citations
