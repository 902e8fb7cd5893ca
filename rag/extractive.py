"""The offline answer backend: the sentences of the top passages that best answer the question, each cited.

Every sentence of the retrieved passages is scored (:meth:`ExtractiveAnswerer.score`; the weights are
``ExtractiveSettings``)::

    relevance = (lexical + cosine_weight·cosine) / (1 + cosine_weight)
    score = prose × novelty × ((1 + cosine_weight)·relevance + type_weight·answer_type + rank_weight/(1 + rank))

- *lexical*: the share of the question's content stems (question words like "what", "how" left out) the
  sentence contains, each stem weighted by its inverse frequency among the candidate sentences (a word
  every candidate shares does not discriminate; a corpus-wide idf measured no better);
- *cosine*: MiniLM similarity of question and sentence (catches paraphrase);
- *answer type*: the question asks for a date, a number or a name and the sentence has one that is not
  in the question ("When was ..." → a year);
- *rank*: the retriever's rank of the passage (0-based): the retriever has read the whole passage;
- *prose* (:func:`rag.sentences.prose_score`) pushes down headings, link lists, title lines and code;
- *novelty*: a sentence that adds fewer than two content stems to the question only restates it.

The best sentence answers; the next best joins it when it scores at least ``second_sentence_ratio`` of it
and comes from the same passage (``second_sentence_ratio_other_passage`` from another passage: a second
cited passage costs citation precision). The assistant abstains when the best relevance is below
``abstain_below``.

Measured (``evals/answers.py``) on SQuAD dev half A questions outside the answer suite's sample, and on
out-of-corpus questions both ways (SciFact claims asked of SQuAD's paragraphs, SQuAD questions asked of
SciFact's abstracts). The weights barely matter (±1 point of answer containment over a grid); the
threshold 0.40 abstains on 100 % and 98.5 % of the out-of-corpus questions and on 2.3 % of the answerable
ones. On ../shared/corpus, in-corpus questions scored 0.52 to 0.92 and out-of-corpus ones at most 0.36.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.bm25 import tokenize
from rag.sentences import Span, prose_score, split_sentences

__all__ = ["ExtractiveAnswerer", "ExtractiveSettings", "ScoredSentence", "Scoring", "question_type"]

Embed = Callable[[list[str]], np.ndarray]

CONTEXT_TERM_WEIGHT = 0.3
"""Weight of a term carried over from earlier turns, relative to a term of the question itself."""
# Words that make a sentence a question, not what it is about: they would match any sentence.
_QUESTION_STEMS = frozenset(
    tokenize("what which who whom whose when where why how much many do does did can could would should shall may might i me my")
)


@dataclass(frozen=True)
class ExtractiveSettings:
    """The measured defaults of the extractive answerer (see the module docstring)."""

    cosine_weight: float = 1.0
    type_weight: float = 0.2
    rank_weight: float = 0.2
    restatement_factor: float = 0.6
    max_sentences: int = 2
    second_sentence_ratio: float = 0.5
    second_sentence_ratio_other_passage: float = 0.95
    min_prose: float = 0.5
    abstain_below: float = 0.40

    def __post_init__(self) -> None:
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {self.max_sentences}")


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence: which passage (0-based), where in its text, its score and its relevance."""

    passage_index: int
    span: Span
    score: float
    relevance: float
    lexical: float
    cosine: float


@dataclass(frozen=True)
class Scoring:
    """The candidate sentences of a question, best first.

    ``confidence`` is the best sentence relevance (lexical match and cosine, without the priors): how
    well the best candidate matches the question, whatever its rank. (Lowering it further when question
    words occur in no passage separated out-of-corpus questions worse on the measurement set.)
    """

    sentences: list[ScoredSentence]

    @property
    def confidence(self) -> float:
        return max((s.relevance for s in self.sentences), default=0.0)


_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DATE = re.compile(rf"\b(?:1\d{{3}}|20\d{{2}}|\d{{1,2}}(?:st|nd|rd|th) century|\d{{2,4}}s)\b|\b(?:{_MONTHS})\b")
_NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|dozen|half|several|many)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<!^)(?<![.!?] )\b[A-Z][a-z]+")


def question_type(question: str) -> str | None:
    """What kind of answer ``question`` asks for: ``"date"``, ``"number"``, ``"name"`` or None.

    >>> question_type("When did the war end?"), question_type("How many moons?"), question_type("Who wrote it?")
    ('date', 'number', 'name')
    """
    lower = question.lower()
    if re.search(r"\b(?:what|which) (?:year|date|century|decade|day|month)\b|\bwhen\b", lower):
        return "date"
    if re.search(r"\bhow (?:many|much|long|far|old|large|big|tall|high|often)\b|\bwhat (?:percentage|percent|number|amount)\b", lower):
        return "number"
    if re.search(r"\bwho(?:m|se)?\b|\bwhere\b", lower):
        return "name"
    return None


def _has_answer_type(kind: str | None, text: str, question_words: set[str]) -> bool:
    if kind == "date":
        return bool(_DATE.search(text))
    if kind == "number":
        return bool(_NUMBER.search(text))
    if kind == "name":
        return any(word.lower() not in question_words for word in _CAPITALISED.findall(text))
    return False


class ExtractiveAnswerer:
    """Picks and cites the sentences of ``passages`` that best answer a question; no LLM.

    ``embed`` maps texts to normalised vectors (``Embedder.embed``, ideally through a ``VectorCache``).

    Example (``passages`` from ``Retriever.search``)::

        answerer = ExtractiveAnswerer(retriever.embedder.embed)
        chosen = answerer.answer_sentences("Who founded the company?", [p.text for p in passages])
        print(" ".join(f"{s.span.clean} [{s.passage_index + 1}]" for s in chosen))
    """

    def __init__(self, embed: Embed, settings: ExtractiveSettings | None = None) -> None:
        self.embed = embed
        self.settings = settings or ExtractiveSettings()

    def score(self, question: str, passages: Sequence[str], context: str = "") -> Scoring:
        """Every sentence of ``passages`` (texts, best-ranked first) with its score, best first.

        ``context`` holds terms carried over from the conversation (see :mod:`rag.conversation`): they
        count for the cosine and, at ``CONTEXT_TERM_WEIGHT``, for the lexical match, because the
        follow-up's own words say what is asked ("how much will it *cost*").
        """
        candidates = []
        seen: set[str] = set()
        for index, text in enumerate(passages):
            for span in split_sentences(text):
                # The same sentence in two passages (a page and its PDF print, overlapping chunks)
                # is one candidate, cited from the better-ranked passage.
                key = span.clean.lower()
                if key not in seen:
                    seen.add(key)
                    candidates.append((index, span))
        own_stems = [t for t in dict.fromkeys(tokenize(question)) if t not in _QUESTION_STEMS]
        if not candidates:
            return Scoring([])
        question_stems = list(dict.fromkeys(own_stems + [t for t in tokenize(context) if t not in _QUESTION_STEMS]))
        sentence_stems = [set(tokenize(span.text)) for _, span in candidates]
        weights = _inverse_frequency(question_stems, sentence_stems)
        for stem in question_stems[len(own_stems) :]:
            weights[stem] *= CONTEXT_TERM_WEIGHT
        total_weight = sum(weights.values()) or 1.0
        texts = [span.clean for _, span in candidates]
        if context:
            # Half the question alone (what is asked), half with its context (what it is about).
            vectors = self.embed([question, f"{question} {context}"] + texts)
            blend = vectors[0] + vectors[1]
            cosines = vectors[2:] @ (blend / max(float(np.linalg.norm(blend)), 1e-9))
        else:
            vectors = self.embed([question] + texts)
            cosines = vectors[1:] @ vectors[0]
        kind = question_type(question)
        question_words = {w.lower() for w in re.findall(r"\w+", question)}
        settings = self.settings
        scored = []
        for (index, span), stems, cosine in zip(candidates, sentence_stems, cosines):
            lexical = sum(weights[t] for t in question_stems if t in stems) / total_weight
            relevance = (lexical + settings.cosine_weight * float(cosine)) / (1 + settings.cosine_weight)
            priors = settings.type_weight * _has_answer_type(kind, span.clean, question_words) + settings.rank_weight / (
                1 + index
            )
            novelty = 1.0 if len(stems - set(question_stems)) >= 2 else settings.restatement_factor
            score = prose_score(span.text) * novelty * (relevance * (1 + settings.cosine_weight) + priors)
            scored.append(ScoredSentence(index, span, score, relevance, lexical, float(cosine)))
        scored.sort(key=lambda s: s.score, reverse=True)
        return Scoring(scored)

    def answer_sentences(self, question: str, passages: Sequence[str], context: str = "") -> list[ScoredSentence]:
        """The sentences that make the answer, in reading order; empty when the passages are too weak."""
        return self.choose(self.score(question, passages, context))

    def choose(self, scoring: Scoring) -> list[ScoredSentence]:
        """The answer's sentences (in reading order), or none when ``scoring`` is below the abstention threshold."""
        scored = scoring.sentences
        if not scored or scoring.confidence < self.settings.abstain_below:
            return []
        best = scored[0]
        chosen = [best]
        for candidate in scored[1:]:
            if len(chosen) == self.settings.max_sentences:
                break
            if prose_score(candidate.span.text) < self.settings.min_prose:
                continue  # a heading or a code line is never worth a second sentence
            same_passage = candidate.passage_index == best.passage_index
            ratio = (
                self.settings.second_sentence_ratio if same_passage else self.settings.second_sentence_ratio_other_passage
            )
            if candidate.score >= ratio * best.score:
                chosen.append(candidate)
        return sorted(chosen, key=lambda s: (s.passage_index, s.span.start))


def _inverse_frequency(terms: Sequence[str], documents: Sequence[set[str]]) -> dict[str, float]:
    frequency = Counter(t for stems in documents for t in stems if t in set(terms))
    count = len(documents)
    return {t: math.log(1 + (count + 1) / (1 + frequency[t])) for t in terms}
