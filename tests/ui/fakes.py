"""A stand-in for ``rag.answering.assistant.Assistant``, so the page's handlers are tested apart from the answerer.

It answers with the first sentence of each of the two best passages and cites them; the second
sentence is flagged unsupported; a question containing "unanswerable" is abstained from. It
remembers the history it was given, so a test can check that follow-ups carry the conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rag.types import Answer, AnswerDelta, Citation

histories: list[list[dict[str, str]]] = []
"""Every history a FakeAssistant was asked with, in order."""


class FakeAssistant:
    """Same constructor and methods as ``rag.answering.assistant.Assistant``; answers are canned from passages."""

    def __init__(self, retriever: Any, llm: Any = None, *, k: int = 5, mode: str = "hybrid") -> None:
        self.retriever = retriever
        self.llm = llm
        self.k = k
        self.mode = mode

    def ask(self, question: str, history: list[dict[str, str]] | None = None) -> Answer:
        histories.append(list(history or []))
        passages = self.retriever.search(question, k=self.k, mode=self.mode)
        if "unanswerable" in question.lower() or not passages:
            return Answer(text="The documents don't answer this question.", passages=passages, abstained=True)
        sentences, citations = [], []
        for marker, passage in enumerate(passages[:2], start=1):
            quote = passage.text.strip().split(". ")[0]
            start = passage.chunk.start + passage.text.find(quote)
            sentences.append(f"{' '.join(quote.split())} [{marker}]")
            citations.append(
                Citation(
                    marker=marker,
                    document_id=passage.document_id,
                    chunk_id=passage.chunk_id,
                    source=passage.source,
                    title=passage.title,
                    page=passage.page,
                    start=start,
                    end=start + len(quote),
                    quote=quote,
                    supported=marker == 1,
                )
            )
        return Answer(
            text=" ".join(sentences), citations=citations, passages=passages, unsupported_sentences=sentences[1:]
        )

    def stream(self, question: str, history: list[dict[str, str]] | None = None) -> Iterator[AnswerDelta]:
        answer = self.ask(question, history)
        for index, word in enumerate(answer.text.split(" ")):
            yield AnswerDelta(text=word if index == 0 else " " + word)
        yield AnswerDelta(answer=answer)
