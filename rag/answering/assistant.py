"""The answer chain: question + history → standalone query → hybrid retrieval → cited answer → ``Answer``.

``Assistant.ask`` returns an :class:`~rag.types.Answer`; ``Assistant.stream`` yields
:class:`~rag.types.AnswerDelta` pieces (the last one carries the Answer, whose text is the checked
version of what was streamed: markers that point nowhere are gone); ``Assistant.as_runnable()`` is the
same chain as a LangChain ``Runnable`` (``invoke``, ``stream``, ``batch``; :mod:`rag.answering.runnable`).

With no LLM the extractive answerer (:mod:`rag.answering.extractive`) composes the answer from passage sentences;
with one, the LLM writes it and :mod:`rag.answering.citations` checks every ``[n]`` it wrote. Either way the
assistant abstains, citing nothing, when the best retrieved sentences are too weak
(``ExtractiveSettings.abstain_below``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from rag.answering.citations import ABSTENTION_TEXT, SupportCheck, citation_for, is_abstention, verify_citations
from rag.answering.conversation import heuristic_standalone, llm_standalone, normalise_history
from rag.answering.extractive import ExtractiveAnswerer, ExtractiveSettings, ScoredSentence
from rag.answering.prompt import answer_messages
from rag.answering.sentences import EncodingCache
from rag.llm import stream_text
from rag.types import Answer, AnswerDelta, Passage

if TYPE_CHECKING:
    from rag.answering.runnable import AssistantRunnable
    from rag.retrieval.retriever import Retriever

__all__ = ["DEFAULT_K", "Assistant"]

log = logging.getLogger(__name__)

DEFAULT_K = 5
"""Passages read per question: on SQuAD half A the gold paragraph is in the hybrid top 5 for most questions."""

History = Iterable[Any] | None


class Assistant:
    """Answers questions from an index, citing the passages; abstains when they do not answer.

    >>> from rag import Retriever, Assistant                              # doctest: +SKIP
    >>> assistant = Assistant(Retriever.open("my-index"))                 # doctest: +SKIP
    >>> answer = assistant.ask("How do I define a default argument value?")  # doctest: +SKIP
    >>> print(answer.text)                                                # doctest: +SKIP
    The most useful form is to specify a default value for one or more arguments. [1]
    >>> follow_up = assistant.ask("When is it evaluated?", history=[        # doctest: +SKIP
    ...     {"role": "user", "content": "How do I define a default argument value?"},
    ...     {"role": "assistant", "content": answer.text}])

    ``llm`` is any LangChain chat model (see :func:`rag.llm.make_chat_model`), or None for the offline
    extractive backend. ``k`` passages are retrieved with ``mode``; ``search_options`` go to
    ``Retriever.search`` (``sources``, ``document_ids``). Raises ``ValueError`` for ``k < 1``.
    """

    def __init__(
        self,
        retriever: Retriever,
        llm: Any = None,
        *,
        k: int = DEFAULT_K,
        mode: str = "hybrid",
        search_options: dict[str, Any] | None = None,
        settings: ExtractiveSettings | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.retriever = retriever
        self.llm = llm
        self.k = k
        self.mode = mode
        self.search_options = dict(search_options or {})
        self.vectors = EncodingCache(retriever.embedder.encode)
        self.extractive = ExtractiveAnswerer(self.vectors.encode, settings)

    def standalone_query(self, question: str, history: History = None) -> str:
        """``question`` rewritten to stand alone: by the LLM when there is one, else by the heuristic."""
        messages = normalise_history(history)
        if not messages:
            return question
        if self.llm is not None:
            return llm_standalone(question, messages, self.llm)
        return heuristic_standalone(question, messages)

    def retrieve(self, query: str) -> list[Passage]:
        """The ``k`` passages the answer is drawn from, best first."""
        return self.retriever.search(query, k=self.k, mode=self.mode, **self.search_options)

    def ask(self, question: str, history: History = None) -> Answer:
        """The answer to ``question``, its citations checked. Raises ``ValueError`` for an empty question."""
        answer = None
        for delta in self.stream(question, history):
            answer = delta.answer or answer
        assert answer is not None  # stream always ends with the Answer
        return answer

    def stream(self, question: str, history: History = None) -> Iterator[AnswerDelta]:
        """The answer as it is written: text deltas, then a final delta whose ``answer`` is the checked Answer."""
        if not question or not question.strip():
            raise ValueError("the question is empty")
        question = question.strip()
        query = self.standalone_query(question, history)
        for delta in self.stream_answer(question, query, self.retrieve(query)):
            if delta.answer is not None:
                delta.answer.query = query  # what retrieval searched for: feedback keeps it
            yield delta

    def stream_answer(self, question: str, query: str, passages: list[Passage]) -> Iterator[AnswerDelta]:
        """Answer from the given ``passages`` (no retrieval): what ``stream`` does after retrieving.

        ``query`` is the standalone form of ``question`` that retrieval used.
        """
        # The heuristic appends context to the question; an LLM rewrites it (then the rewrite is the question).
        context = ""
        if query.startswith(question):
            context = query[len(question) :].strip()
        else:
            question = query
        scoring = self.extractive.score(question, [p.text for p in passages], context)
        log.debug("question %r: %d passages, confidence %.3f", question, len(passages), scoring.confidence)
        if scoring.confidence < self.extractive.settings.abstain_below:
            yield AnswerDelta(text=ABSTENTION_TEXT)
            yield AnswerDelta(answer=Answer(text=ABSTENTION_TEXT, passages=passages, abstained=True))
            return
        if self.llm is None:
            yield from self._stream_extractive(self.extractive.choose(scoring), passages)
        else:
            yield from self._stream_llm(query, passages)

    def _stream_extractive(self, chosen: list[ScoredSentence], passages: list[Passage]) -> Iterator[AnswerDelta]:
        pieces = [f"{sentence.span.clean} [{sentence.passage_index + 1}]" for sentence in chosen]
        for number, piece in enumerate(pieces):
            yield AnswerDelta(text=piece if number == 0 else " " + piece)
        yield AnswerDelta(answer=self._extractive_answer(pieces, chosen, passages))

    @staticmethod
    def _extractive_answer(pieces: list[str], chosen: list[ScoredSentence], passages: list[Passage]) -> Answer:
        citations = []
        for sentence in chosen:
            # The sentence is the passage's own text, so it supports itself: no check needed.
            check = SupportCheck(quote=sentence.span, coverage=1.0, cosine=1.0, supported=True)
            citations.append(citation_for(sentence.passage_index + 1, passages[sentence.passage_index], check))
        return Answer(text=" ".join(pieces), citations=citations, passages=passages)

    def _stream_llm(self, query: str, passages: list[Passage]) -> Iterator[AnswerDelta]:
        written: list[str] = []
        for piece in stream_text(self.llm, answer_messages(query, passages)):
            written.append(piece)
            yield AnswerDelta(text=piece)
        text = "".join(written).strip()
        if not text or is_abstention(text):
            yield AnswerDelta(answer=Answer(text=text or ABSTENTION_TEXT, passages=passages, abstained=True))
            return
        checked = verify_citations(text, passages, self.vectors.embed)
        yield AnswerDelta(
            answer=Answer(
                text=checked.text,
                citations=checked.citations,
                passages=passages,
                unsupported_sentences=checked.unsupported_sentences,
            )
        )

    def as_runnable(self) -> AssistantRunnable:
        """This assistant as a LangChain Runnable: input a question or ``{"question", "history"}``."""
        from rag.answering.runnable import AssistantRunnable  # LangChain loads only when a chain is asked for

        return AssistantRunnable(self)
