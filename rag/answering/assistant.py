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
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from index.bm25 import tokenize
from rag.answering.citations import ABSTENTION_TEXT, SupportCheck, citation_for, is_abstention, verify_citations
from rag.answering.compose import (
    complete_sentence,
    is_how_to,
    number_by_appearance,
    question_parts,
    without_repeated_units,
)
from rag.answering.conversation import Standalone, is_follow_up, llm_standalone, normalise_history, resolve_follow_up
from rag.answering.extractive import (
    DOCUMENT_MIN_CHUNKS,
    ExtractiveAnswerer,
    ExtractiveSettings,
    ScoredSentence,
    section_leads,
)
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
SCOPED_SHARE = 0.6
"""Share of a follow-up's passages drawn from the documents the conversation is about."""
OUT_OF_SCOPE_FACTOR = 0.8
"""Score factor of a follow-up's sentences from documents the conversation is not about."""
CONVERSATION_DOCUMENTS = 2
"""How many documents the last answer is traced back to."""
DOCUMENT_STEMS_KEPT = 64
"""Documents whose stems an assistant remembers (fs.md, 0.5 MB of text, takes about 0.1 s to read and stem)."""
DUPLICATE_SHARE = 0.8
"""A passage whose word 4-grams are at least this share inside better-ranked passages repeats them."""
CANDIDATE_FACTOR = 2
"""Passages searched for each one read, so that the ones dropped as repeats can be replaced."""
_MARKERS = re.compile(r"\[\d+(?:\s*[,;-]\s*\d+)*\]")

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
        # The last DOCUMENT_STEMS_KEPT documents' stems are remembered (fs.md takes ~0.1 s to read and stem).
        self.document_stems = lru_cache(maxsize=DOCUMENT_STEMS_KEPT)(self._read_document_stems)
        self.section_leads = lru_cache(maxsize=DOCUMENT_STEMS_KEPT)(self._read_section_leads)
        self.extractive = ExtractiveAnswerer(
            self.vectors.encode,
            settings,
            document_frequencies=retriever.store.term_document_frequencies,
            document_stems=self.document_stems,
            section_leads=self.section_leads,
        )

    def _read_document_stems(self, document_id: str) -> frozenset[str] | None:
        """The stems of a document's whole text, or None when it has fewer than ``DOCUMENT_MIN_CHUNKS`` chunks (or is gone)."""
        store = self.retriever.store
        if len(store.rows_for_documents([document_id])) < DOCUMENT_MIN_CHUNKS:
            return None
        document = store.get_document(document_id)
        return frozenset(tokenize(f"{document.title}\n{document.text}")) if document is not None else None

    def _read_section_leads(self, document_id: str) -> frozenset[int]:
        """The document offsets of the sentences that open the document's sections (none when it is gone)."""
        return section_leads(self.retriever.store.document_chunks(document_id)[0])

    def standalone_query(self, question: str, history: History = None) -> str:
        """``question`` rewritten to stand alone: by the LLM when there is one, else by the heuristic."""
        return self.standalone(question, history).query

    def standalone(self, question: str, history: History = None) -> Standalone:
        """``question`` rewritten to stand alone, and the context carried over (none from an LLM's rewrite)."""
        messages = normalise_history(history)
        if not messages:
            return Standalone(question)
        if self.llm is not None:
            return Standalone(question, llm_standalone(question, messages, self.llm))
        return resolve_follow_up(question, messages)

    def retrieve(self, query: str, scope: list[str] | None = None) -> list[Passage]:
        """The ``k`` passages the answer is drawn from, best first.

        With a ``scope`` (the documents a conversation is about, for a follow-up), the best
        ``SCOPED_SHARE`` of them come from those documents and the rest from the whole index: "And how do
        I remove them?" after a question about adding files is about the same guide page, not about
        removing sockets in another document.
        """
        found = self.retriever.search(query, k=self.k * CANDIDATE_FACTOR, mode=self.mode, **self.search_options)
        if not scope or "document_ids" in self.search_options:
            return without_repeats(found, self.k)
        scoped_k = max(1, round(self.k * SCOPED_SHARE))
        scoped = self.retriever.search(
            query, k=scoped_k * CANDIDATE_FACTOR, mode=self.mode, document_ids=scope, **self.search_options
        )
        scoped = without_repeats(scoped, scoped_k)
        chunks = {p.chunk_id for p in scoped}
        return without_repeats(scoped + [p for p in found if p.chunk_id not in chunks], self.k)

    def conversation_documents(self, messages: list[dict[str, str]]) -> list[str]:
        """The documents the last answer came from, found by searching for its own words (a chat history
        carries the answer's text, not its citations); empty when it abstained."""
        answers = [m["content"] for m in messages if m["role"] == "assistant" and m["content"].strip()]
        if not answers or is_abstention(answers[-1]):
            return []
        text = _MARKERS.sub(" ", answers[-1])
        hits = self.retriever.search(text, k=CONVERSATION_DOCUMENTS, mode=self.mode, per_document=True)
        return [hit.document_id for hit in hits]

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
        standalone, scope = self.prepare(question.strip(), history)
        yield from self.stream_prepared(standalone, self.retrieve(standalone.query, scope), scope)

    def prepare(self, question: str, history: History = None) -> tuple[Standalone, list[str]]:
        """``question`` made to stand alone, and the documents the conversation is about (none unless a follow-up).

        ``stream`` and the LangChain chain (:mod:`rag.answering.runnable`) both start here, so a follow-up is
        handled the same way by the CLI, the page, the HTTP and MCP servers and the chain.
        """
        messages = normalise_history(history)
        scope = self.conversation_documents(messages) if messages and is_follow_up(question) else []
        return self.standalone(question, messages), scope

    def stream_prepared(
        self, standalone: Standalone, passages: list[Passage], scope: list[str] | None = None
    ) -> Iterator[AnswerDelta]:
        """What ``stream`` does after retrieving ``passages`` for ``standalone.query``."""
        resolved = standalone.resolved if standalone.antecedent else ""
        for delta in self.stream_answer(standalone.question, standalone.scored, passages, scope, resolved=resolved):
            if delta.answer is not None:
                delta.answer.query = standalone.query  # what retrieval searched for: feedback keeps it
            yield delta

    def stream_answer(
        self, question: str, query: str, passages: list[Passage], scope: list[str] | None = None, resolved: str = ""
    ) -> Iterator[AnswerDelta]:
        """Answer from the given ``passages`` (no retrieval): what ``stream`` does after retrieving.

        ``query`` is the standalone form of ``question`` that retrieval used; ``scope`` the documents
        the conversation is about (a follow-up's sentences from other documents count less); ``resolved``
        the follow-up with its pronoun replaced, when it had one (``Standalone.resolved``).
        """
        # The heuristic appends context to the question; an LLM rewrites it (then the rewrite is the question).
        context = ""
        if query.startswith(question):
            context = query[len(question) :].strip()
        else:
            question = query
        factors = [1.0 if p.document_id in scope else OUT_OF_SCOPE_FACTOR for p in passages] if scope else None
        scoring = self.extractive.score(question, passages, context, passage_factors=factors, resolved=resolved)
        log.debug("question %r: %d passages, confidence %.3f", question, len(passages), scoring.confidence)
        if scoring.confidence < self.extractive.settings.abstain_below:
            yield AnswerDelta(text=ABSTENTION_TEXT)
            yield AnswerDelta(answer=Answer(text=ABSTENTION_TEXT, passages=passages, abstained=True))
            return
        if self.llm is None:
            chosen = self._two_part(question, context, passages, factors, self.extractive.choose(scoring))
            yield from self._stream_extractive(chosen, passages, is_how_to(question))
        else:
            yield from self._stream_llm(query, passages)

    def _two_part(
        self,
        question: str,
        context: str,
        passages: list[Passage],
        factors: list[float] | None,
        chosen: list[ScoredSentence],
    ) -> list[ScoredSentence]:
        """For a question that asks two things, the best sentence for each part (both cited)."""
        parts = question_parts(question)
        if len(parts) < 2 or not chosen:
            return chosen
        second = self.extractive.score(parts[1], passages, f"{parts[0]} {context}".strip(), passage_factors=factors)
        if not second.sentences:
            return chosen
        answer = second.sentences[0]
        if any(answer.span == c.span and answer.passage_index == c.passage_index for c in chosen):
            return chosen
        first = max(chosen, key=lambda s: s.score)
        return sorted([first, answer], key=lambda s: (s.passage_index, s.span.start))

    def _stream_extractive(
        self, chosen: list[ScoredSentence], passages: list[Passage], how_to: bool = False
    ) -> Iterator[AnswerDelta]:
        units = without_repeated_units(
            [complete_sentence(passages[s.passage_index], s.passage_index, s.span, how_to) for s in chosen]
        )
        markers, ordered = number_by_appearance(units, passages)
        pieces = [unit.text(markers[unit.passage_index]) for unit in units]
        for number, piece in enumerate(pieces):
            yield AnswerDelta(text=piece if number == 0 else _joiner(pieces[number - 1]) + piece)
        text = "".join(piece if n == 0 else _joiner(pieces[n - 1]) + piece for n, piece in enumerate(pieces))
        citations = []
        for unit in units:
            # The quote is the passage's own text, so it supports itself: no check needed.
            check = SupportCheck(quote=unit.quote, coverage=1.0, cosine=1.0, supported=True)
            citations.append(citation_for(markers[unit.passage_index], passages[unit.passage_index], check))
        yield AnswerDelta(answer=Answer(text=text, citations=citations, passages=ordered))

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


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 4]) for i in range(max(len(words) - 3, 1))}


def without_repeats(passages: list[Passage], k: int) -> list[Passage]:
    """The first ``k`` passages that do not repeat better-ranked ones, best first.

    The same text indexed twice (an HTML page and its PDF print, a file copied into two folders) would
    otherwise fill the few passages an answer reads with one paragraph: a passage whose word 4-grams are
    at least ``DUPLICATE_SHARE`` inside the passages kept before it is passed over, and the next one read.
    (On ``shared_corpus_answers`` the follow-up "And the continue statement?" got the break paragraph from
    the tutorial page and again from its PDF, and never the paragraph on ``continue``.)
    """
    kept: list[Passage] = []
    seen: set[tuple[str, ...]] = set()
    for passage in passages:
        shingles = _shingles(passage.text)
        if shingles and len(shingles & seen) >= DUPLICATE_SHARE * len(shingles):
            continue
        kept.append(passage)
        seen |= shingles
        if len(kept) == k:
            break
    return kept


def _joiner(previous: str) -> str:
    """What separates an answer piece from the one before: a blank line after a code block, else a space."""
    return "\n\n" if previous.rstrip().endswith("```") or "\n" in previous else " "
