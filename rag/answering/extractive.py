"""The offline answer backend: the sentences of the top passages that best answer the question, each cited.

Every sentence of the retrieved passages is scored (:meth:`ExtractiveAnswerer.score`; the weights are
``ExtractiveSettings``)::

    score = prose × novelty × lead × (token_match + passage_weight·passage_match + cosine_weight·cosine)

- *token_match*: how well the sentence's words, read in context by the embedding model, match the
  question's: each question token (question words and function words left out) takes its best cosine
  with any token of the sentence, and the mean is weighted by the token's inverse frequency among the
  candidate sentences (a word every candidate shares does not discriminate). This is BERTScore recall
  (Zhang et al., ICLR 2020) with the MiniLM token vectors; it matches "bureaucracy" to "bureaucratic"
  and "institute" to "institutionally", which stems do not;
- *passage_match*: the same against all the tokens of the sentence's passage: an answer sentence often
  names its subject only in the sentence before it, and the passage says which subject it is;
- *cosine*: MiniLM similarity of question and sentence (catches paraphrase);
- *prose*: lines that are not prose (:func:`rag.answering.sentences.prose_score` below ``min_prose``: headings,
  link lists, title lines, code) count at their prose score;
- *novelty*: a sentence that adds fewer than two content stems to the question only restates it;
- *lead*: a sentence that opens its section (one of its first ``LEAD_SENTENCES`` prose sentences,
  :func:`section_leads`) counts ``1 + section_lead_weight × heading match``, the heading match being the
  idf-weighted share of the question's words that the section's own heading holds (API names split at
  their capitals, parameters left out: "net.createServer([options])" holds "create" and "server"). A
  section that a question names opens with the sentence that defines it ("Formatted string literals (also
  called f-strings) let you ...", "Creates a new TCP or IPC server.", "Functions can also be called using
  keyword arguments of the form kwarg=value."), and its later sentences only go into detail. On
  ``shared_corpus_answers`` (with the prose fix of :func:`rag.answering.sentences.prose_score` before it):
  right with a valid citation 0.778 -> 0.870 at weight 0.25 (dev 0.800 -> 0.800, held out 0.759 -> 0.931);
  at 0.5, 0.833 (held out 0.862); SQuAD and SciFact, which have no headings, unchanged. Without the
  heading's parameters, the document's title, indented list continuations and the prose of a chunk that
  starts inside its section, it lost node-01 and node-07 of the dev split (an extension's "once" heading
  named "node", "listener" and "once"; "**Default:** `false`." counted as an opening). Merged with the
  follow-ups work: 0.926. Three or four opening sentences instead of two: 0.889 (held out 0.897). Not kept
  either, as no answer of the suite became right: API parameter and return list items ("* `listener`
  {Function} ...") at 0.8, and a 1.15 factor, for how-to questions, on sentences that say how ("use",
  "by ...ing", a call, a colon before code); nor the first chunk of a section whose heading names the
  question added as a sixth passage (Assistant.retrieve; 0.944 unchanged after the rule below).

The best sentence then gives way to an earlier one of its document that names the same API
(:func:`_first_documented`) or, for "What is X?" and "What does X do?", that opens with X ("A tuple
consists of ..." before "Empty tuples are constructed ...", :func:`_first_definition`), when that scores at
least 0.7 of it: ``shared_corpus_answers`` 0.926 -> 0.944 (dev 0.880 -> 0.920, held out 0.966), no answer
of SQuAD half A changed.

The best sentence answers and the next best sentence *of the same passage, or of another chunk of the
same section of the same document*, joins it when it scores at least ``second_sentence_ratio`` of it: a
passage of another document costs citation precision more than it adds answers. (Same passage only, as
before issue 11's chunking change, made the second sentence depend on where chunks were cut: when
format 3 cut the floating-point tutorial's "Representation Error" section in two, "Why can't 0.1 be
represented exactly ...?" lost the sentence that answers it to an unrelated one of the other chunk.) The assistant abstains when the confidence, the best *relevance* (the mean of the
question stems' idf-weighted share the sentence contains and the cosine) times the *coverage* (the
idf-weighted share of the question's stems the collection knows at all), is below ``abstain_below``.

Issue 11 changed where the idf comes from: the collection's BM25 statistics, not the few candidate
sentences one retrieval returned (their idf moved with chunk boundaries), and added the coverage, so
that a question on the documents' subject about something they never mention is declined. Measured
on the answer suites' questions (SQuAD answerable / SciFact claims asked of SQuAD / SQuAD questions asked
of SciFact), abstaining below a threshold of

- 0.40, relevance alone: 1.9 % / 100 % / 93.0 %; 0.44: 4.4 % / 100 % / 97.5 %;
- 0.40, relevance times coverage: 3.6 % / 100 % / 94.5 %; 0.42 (the setting): 4.7 % / 100 % / 95.5 %
  (4.5 % once "happen" became a question word);
- before issue 11 (candidate idf, 0.40): 3.8 % / 100 % / 97.0 %.

Relevance alone declined 3 of the 10 near-topic questions of ``shared_corpus_answers``, times coverage 6;
counting every stem the passages lack, not only those the collection lacks, declined 7 but also 13 %
of SQuAD's answerable questions. Times the *document support* as well (the share of the question's words
that the best sentence's document uses anywhere, for documents of ``DOCUMENT_MIN_CHUNKS`` chunks or more;
``Scoring.document_support``): 8, with no answerable question of the suite declined and SQuAD and SciFact,
whose documents are a paragraph or an abstract, unchanged. And "What did X say/tell ...?" is declined when
no candidate sentence reports X saying anything (:func:`speaker_quoted`; "What did Xi Jinping say about AI
safety?" of an article that names him and never quotes him): 9. What still passes is a question whose
words the document uses without answering it ("How do I make an HTTPS request?" of the streams
reference, which shows an HTTP server).
On ``shared_corpus_answers`` the sentence choice also gained from: only prose and list blocks being
candidates, a sentence interrupted by code counting at ``INTERRUPTED_FACTOR``, one leaning on the
sentence before ("Of course, ...") at ``DEPENDENT_FACTOR`` (structured documents only: SQuAD and SciFact
carry no blocks and are unchanged by both), a one-word answer to "what does X do" no longer counted as a
restatement, and the first-documented API preferred (``FIRST_DOCUMENTED_RATIO``).

Measured (``python -m evals.tune_extractive --grid``) on 700 SQuAD dev half A questions outside the
answer suite's sample, five passages each: the best sentence holds the gold answer for 76.3 % of them,
its passage for 87.9 %, and the two-sentence answer for 82.6 % (57 words on average). The stem-overlap
scoring this replaced (stems, cosine, answer-type and passage-rank priors) reached 70.1 %, 82.0 % and
77.6 % on a sample drawn the same way; adding answer-type, rank, retriever-score, bigram or passage-
coverage terms to the token matching measured no better. ``passage_weight`` 0.5 to 1.0 and
``cosine_weight`` 0 to 0.6 all land within a point; a ``second_sentence_ratio`` of 0.85 shortens
answers to 42 words and costs a point. The abstention threshold 0.40 abstains on 100 % and 97.5 % of
the out-of-corpus questions (SciFact claims asked of SQuAD's paragraphs, SQuAD questions asked of
SciFact's abstracts) and on 3.9 % of the answerable ones. On ../shared/corpus, in-corpus questions
scored 0.52 to 0.92 and out-of-corpus ones at most 0.36.

Two trained helpers were measured and are not used (git branch ``experiment/learned-answer-choice``
holds their code and figures). Both were trained on 3,600 SQuAD dev half A questions outside the suite,
then measured on 689 questions from six articles they never saw. The current scoring there gets
0.701 / 0.849 / 0.792 (sentence / passage / answer):

- a cross-encoder that predicts where the answer starts (MiniLM's top two layers and a head, trained
  for 38 minutes; used alone it picks a right passage 40.5 % of the time) added as a term:
  0.726 / 0.855 / 0.797;
- token vectors from MiniLM's top two layers, trained on this scoring's own objective:
  0.723 / 0.851 / 0.807.

So there is too little data here to train a reader that beats the bi-encoder's passage choice.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.bm25 import tokenize
from index.embedding import Encoding
from index.structure import QUOTABLE_KINDS, whole_lists
from index.types import Chunk
from rag.answering.injection import looks_like_instruction
from rag.answering.sentences import Span, prose_score, split_sentences
from rag.types import Passage

__all__ = ["ExtractiveAnswerer", "ExtractiveSettings", "ScoredSentence", "Scoring"]

Encode = Callable[[list[str]], list[Encoding]]
DocumentFrequencies = Callable[[Sequence[str]], tuple[int, list[int]]]
"""Stems -> (number of chunks, chunks holding each stem): ``IndexStore.term_document_frequencies``."""
DocumentStems = Callable[[str], "frozenset[str] | None"]
"""Document id -> the stems of its whole text, or None when it is shorter than ``DOCUMENT_MIN_CHUNKS`` chunks."""

LEAD_SENTENCES = 2
"""How many prose sentences open a section (see ``ExtractiveSettings.section_lead_weight``)."""
SectionLeads = Callable[[str], frozenset[int]]
"""Document id -> document offsets of the sentences that open its sections (:func:`section_leads`)."""

FIRST_DOCUMENTED_RATIO = 0.7
"""How close to the best an earlier sentence naming the same API must score to be preferred."""
_CODE_NAME = re.compile(r"`([^`\n]+)`|\b([A-Za-z_][\w.]*)\(\)")
INTERRUPTED_FACTOR = 0.85
DEPENDENT_FACTOR = 0.9
"""Score factor of a sentence that leans on the one before ("Of course, ...", "In that case, ...")."""
_DEPENDENT_OPENER = re.compile(
    r"^(?:of course|as you can see|in that case|in this case|in other words|however|otherwise|similarly|also|"
    r"then|thus|so|here|that|this|these|those|it|they|such)\b",
    re.IGNORECASE,
)
"""Score factor of a sentence a code block interrupts ("..., so that" code "will print 5.")."""
_FINISHED = re.compile(r"[.!?:;][\"'”’)\]]*$")
CONTEXT_TERM_WEIGHT = 0.3
CONFIDENCE_CONTEXT_WEIGHT = 1.0
"""Weight of a carried-over term in the stem match that decides abstention. A follow-up's own words are
few ("And how do I remove them?"): at 0.3 the README's two follow-ups fell below the threshold although
the passage answering them ranked first; the conversation's subject is what the documents must cover."""
"""Weight of a term carried over from earlier turns, relative to a term of the question itself."""
# Words that make a sentence a question, not what it is about: they would match any sentence ("what
# happens when ..." asks about the when-clause; with "happen" counted, the README's follow-up fell to 0.413).
_QUESTION_WORDS = (
    "what which who whom whose when where why how much many do does did can could would should shall may might i me my"
    " happen happens happened"
)
_QUESTION_STEMS = frozenset(tokenize(_QUESTION_WORDS))
# Light words of a question that name nothing the documents must contain ("what is it *made* of").
_LIGHT_STEMS = frozenset(
    tokenize(
        "again another made make look way use get thing kind example tell also them they it its this that these "
        "those he she him her his their one ones there "
        # Personal and reflexive pronouns: "How do I raise one myself?" asks nothing about "myself".
        "i me my mine myself we us our ours ourselves you your yours yourself yourselves himself herself "
        "itself themselves"
    )
)
_PRONOUN_STEMS = frozenset(tokenize("he she him her his hers they them their theirs it its one ones"))
_ANSWER_KIND = re.compile(
    r"^\W*(?:and\s+)?(?:which|what|whose)\s+(?!(?:is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may|might|happens?|happened)\b)(?P<kind>[a-z]+)\b",
    re.IGNORECASE,
)
"""The noun after "which/what" names the kind of thing the answer is, which the answer need not say."""
COVERAGE_MIN_CHUNKS = 500
"""Collections smaller than this do not lower confidence for words they lack."""
COVERAGE_PREFIX = 4
"""Stems sharing this many first letters count as the same word for coverage."""
DOCUMENT_MIN_CHUNKS = 8
"""A document this long (some 1,600 tokens) that never uses a question's word does not discuss it."""
# Word pieces that carry no topic: question words and the commonest function words.
_UNINFORMATIVE_PIECES = frozenset(
    (
        _QUESTION_WORDS + " the a an of in on at to for by with from and or is was were are be been it its this that"
        " as their his her they he she there than then into about"
    ).split()
)


@dataclass(frozen=True)
class ExtractiveSettings:
    """The measured defaults of the extractive answerer (see the module docstring)."""

    passage_weight: float = 1.0
    cosine_weight: float = 0.3
    restatement_factor: float = 0.6
    max_sentences: int = 2
    second_sentence_ratio: float = 0.0
    min_prose: float = 0.5
    abstain_below: float = 0.42
    section_lead_weight: float = 0.25

    def __post_init__(self) -> None:
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {self.max_sentences}")


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate sentence: which passage (0-based), where in its text, its score and what made it."""

    passage_index: int
    span: Span
    score: float
    relevance: float
    lexical: float
    cosine: float
    token_match: float
    lead: float = 1.0
    """The factor ``score`` holds for opening a section whose heading names the question's subject."""


@dataclass(frozen=True)
class Scoring:
    """The candidate sentences of a question, best first.

    ``confidence`` is the best sentence relevance (stem match and cosine): how well the best candidate
    matches the question, whatever its rank. (Lowering it further when question words occur in no
    passage separated out-of-corpus questions worse on the measurement set.)
    """

    sentences: list[ScoredSentence]
    coverage: float = 1.0
    positions: list[tuple[str, int]] | None = None
    """Each passage's (document id, start offset in the document), when the passages were Passages."""
    question_stems: frozenset[str] = frozenset()
    """The idf-weighted share of the question's own content stems that occur in the passages at all."""
    sections: list[tuple[str, str]] | None = None
    """Each passage's (document id, heading path), when the passages were Passages."""
    document_support: float = 1.0
    """The idf-weighted share of the question's words (those the collection knows) that the best sentence's
    document uses somewhere, when that document is long (``DOCUMENT_MIN_CHUNKS``); 1 otherwise."""
    speaker_quoted: bool = True
    """False when the question asks what someone said and no sentence reports them saying anything."""
    subject: tuple[str, ...] = ()
    """The stems of what a "What is X?" or "What does X do?" question asks about (:func:`asked_subject`)."""

    def same_place(self, first: int, second: int) -> bool:
        """Whether passages ``first`` and ``second`` (indexes) are one passage or chunks of one section of one document."""
        return first == second or (self.sections is not None and self.sections[first] == self.sections[second])

    def reading_order(self, sentence: ScoredSentence) -> tuple[str, int, int]:
        """A key that sorts sentences of one document as they stand in it (by passage otherwise)."""
        if self.positions is None:
            return ("", sentence.passage_index, sentence.span.start)
        document, offset = self.positions[sentence.passage_index]
        return (document, offset + sentence.span.start, 0)

    @property
    def confidence(self) -> float:
        return max((s.relevance for s in self.sentences), default=0.0) * self.coverage * self.document_support * self.speaker_quoted


class ExtractiveAnswerer:
    """Picks and cites the sentences of ``passages`` that best answer a question; no LLM.

    ``encode`` maps texts to their encodings (``Embedder.encode``, ideally through an
    :class:`~rag.answering.sentences.EncodingCache`).

    Example (``passages`` from ``Retriever.search``)::

        answerer = ExtractiveAnswerer(retriever.embedder.encode)
        chosen = answerer.answer_sentences("Who founded the company?", [p.text for p in passages])
        print(" ".join(f"{s.span.clean} [{s.passage_index + 1}]" for s in chosen))
    """

    def __init__(
        self,
        encode: Encode,
        settings: ExtractiveSettings | None = None,
        document_frequencies: DocumentFrequencies | None = None,
        document_stems: DocumentStems | None = None,
        section_leads: SectionLeads | None = None,
    ) -> None:
        self.encode = encode
        # The sentences that open each section of a document (Assistant: section_leads over the store's chunks).
        self.section_leads = section_leads
        self.settings = settings or ExtractiveSettings()
        # The whole document of the best sentence (IndexStore text, see Assistant): a question word that a
        # long document about the question's subject never uses is something it does not discuss.
        self.document_stems = document_stems
        # Corpus statistics (IndexStore.term_document_frequencies): the stem match, and so abstention,
        # then weighs a question's words by how rare they are in the collection, not among the few
        # sentences one retrieval happened to return (which moved with chunk boundaries).
        self.document_frequencies = document_frequencies

    def score(
        self,
        question: str,
        passages: Sequence[str | Passage],
        context: str = "",
        passage_factors: Sequence[float] | None = None,
        resolved: str = "",
    ) -> Scoring:
        """Every sentence of ``passages`` (texts or Passages, best-ranked first) with its score, best first.

        Of a Passage whose chunk knows its blocks (:mod:`index.structure`), only sentences of prose and list
        blocks are candidates: a heading, a code line, a reference list or page furniture never answers.

        ``passage_factors`` (one a passage) scale its sentences' scores, not the confidence.
        ``context`` holds terms carried over from the conversation (see :mod:`rag.answering.conversation`): they
        count for the cosine and, at ``CONTEXT_TERM_WEIGHT``, for the word matches, because the
        follow-up's own words say what is asked ("how much will it *cost*"). ``resolved`` is the follow-up
        with its pronoun replaced (``Standalone.resolved``); given, its cosine, not the blend's, counts for the confidence.
        """
        candidates = _candidates(passages)
        if not candidates:
            return Scoring([])
        passages_in = passages
        passages = [_text_of(p) for p in passages]
        texts = [span.clean for _, span, _ in candidates]
        asked = [question, f"{question} {context}"] if context else [question]
        if context and resolved:
            asked.append(resolved)
        encodings = self.encode(asked + texts)
        sentences = encodings[len(asked) :]
        vectors = np.array([e.vector for e in sentences])
        if context:
            # Half the question alone (what is asked), half with its context (what it is about): for a follow-up
            # whose pronoun was resolved, its resolved form ("How much will rebuilding the lighthouse cost?").
            blend = encodings[0].vector + encodings[2 if resolved else 1].vector
            cosines = vectors @ (blend / max(float(np.linalg.norm(blend)), 1e-9))
        else:
            cosines = vectors @ encodings[0].vector
        # Whether the passages answer at all is judged on the whole question: a follow-up whose pronoun was
        # resolved on its resolved form ("Which network did Bessent tell?", not "Which network did he tell?").
        # The sentence is still chosen by the blend above, so the follow-up's own words weigh twice: scored on
        # the resolved form alone, "How much will rebuilding the lighthouse cost?" chose the sentence on
        # rebuilding it, not the cost (and shared_corpus_answers' follow-ups were 1.0 with either, 0.9 when the
        # blend was the question and the question with its context).
        understood = vectors @ encodings[2].vector if context and resolved else cosines
        sentence_stems = [set(tokenize(span.text)) for _, span, _ in candidates]
        matched_stems = sentence_stems
        if context:
            # A follow-up's own words are few, so each counts: a form the stems miss ("told" for "tell") is
            # matched through its lemma. (Follow-ups only: standalone questions' scoring is measured without.)
            matched_stems = [stems | _sentence_lemma_stems(span.text) for stems, (_, span, _) in zip(sentence_stems, candidates)]
        lexical = _stem_match(question, context, matched_stems, self.document_frequencies)
        token_match, passage_match = _token_match(
            encodings[0], encodings[1] if context else None, candidates, sentences
        )
        settings = self.settings
        leads = [self._leads(p) for p in passages_in]
        heading_matches = [self._heading_match(question, p) for p in passages_in]
        question_stems = set(tokenize(question))
        content_stems = question_stems - _QUESTION_STEMS
        scored = []
        for number, (index, span, factor) in enumerate(candidates):
            cosine = float(cosines[number])
            relevance = (lexical[number] + float(understood[number])) / 2
            prose = prose_score(span.text)
            prose_factor = 1.0 if prose >= settings.min_prose else prose
            new_stems = len(sentence_stems[number] - question_stems)
            # "The pass statement does nothing." adds one word to "What does the pass statement do?" and answers it.
            restates = new_stems < 2 and not (new_stems == 1 and content_stems <= sentence_stems[number])
            novelty = settings.restatement_factor if restates else 1.0
            match = (
                token_match[number] + settings.passage_weight * passage_match[index] + settings.cosine_weight * cosine
            )
            if passage_factors is not None:
                factor *= passage_factors[index]
            lead = 1.0 + settings.section_lead_weight * heading_matches[index] if span.start in leads[index] else 1.0
            score = factor * lead * prose_factor * novelty * match
            scored.append(
                ScoredSentence(index, span, score, relevance, lexical[number], cosine, token_match[number], lead)
            )
        scored.sort(key=lambda s: s.score, reverse=True)
        positions = sections = None
        if all(not isinstance(p, str) for p in passages_in):
            positions = [(p.document_id, p.chunk.start) for p in passages_in]
            sections = [(p.document_id, p.chunk.heading) for p in passages_in]
        support = self._document_support(question, passages_in, scored[0]) if scored else 1.0
        quoted = speaker_quoted(question, [(passages[index], span.text) for index, span, _ in candidates])
        return Scoring(
            scored, self._coverage(question, passages_in), positions, frozenset(question_stems), sections, support,
            quoted, asked_subject(question),
        )

    def _leads(self, passage: str | Passage) -> frozenset[int]:
        """Offsets in the passage's text of the sentences that open its section (see :func:`section_leads`)."""
        if self.section_leads is None or isinstance(passage, str):
            return frozenset()
        start, end = passage.chunk.start, passage.chunk.end
        return frozenset(at - start for at in self.section_leads(passage.document_id) if start <= at < end)

    def _heading_match(self, question: str, passage: str | Passage) -> float:
        """The idf-weighted share of the question's own words that the passage's section heading holds."""
        if isinstance(passage, str) or " > " not in passage.chunk.heading:
            return 0.0  # no heading, or only the document's title, which names whatever the document is about
        # An API's heading names its parameters too ("events.once(emitter, name)"): they are not its subject.
        leaf = re.sub(r"\(.*\)", "", passage.chunk.heading.split(" > ")[-1])
        heading = set(tokenize(_split_camel_case(leaf)))
        own = [
            t
            for t in dict.fromkeys(tokenize(_split_camel_case(question)))
            if t not in _QUESTION_STEMS and t not in _LIGHT_STEMS
        ]
        if not own or not heading:
            return 0.0
        if self.document_frequencies is None:
            weights = [1.0] * len(own)
        else:
            count, frequencies = self.document_frequencies(own)
            weights = [math.log(1 + (count - df + 0.5) / (df + 0.5)) for df in frequencies]
        return sum(w for t, w in zip(own, weights) if t in heading) / (sum(weights) or 1.0)

    def _document_support(self, question: str, passages: Sequence[str | Passage], best: ScoredSentence) -> float:
        """How much of what the question names the best sentence's document uses anywhere (see ``Scoring``).

        Coverage (below) only sees words no chunk of the collection holds; a question on a document's subject
        may ask about something the collection mentions elsewhere but that document never does ("When will
        the *second round* of the talks be held?" of an article that reports the first; "How do I create a
        *worker* thread?" answered from the file-system reference). Only documents of at least
        ``DOCUMENT_MIN_CHUNKS`` chunks count: a paragraph or an abstract (SQuAD, SciFact) paraphrases the
        question in other words, and counting its absent words there declined 13 % of SQuAD's answerable
        questions. A word counts as used when the document holds it, or a word that starts with all its
        letters but the last ("reacted" and "reaction"; not "worker" and "working"), or its lemma ("spoke",
        "speak").
        """
        passage = passages[best.passage_index]
        if self.document_stems is None or self.document_frequencies is None or isinstance(passage, str):
            return 1.0
        stems = self.document_stems(passage.document_id)
        own = [t for t in dict.fromkeys(tokenize(question)) if t not in _QUESTION_STEMS and t not in _LIGHT_STEMS]
        if stems is None or not own:
            return 1.0
        stems = stems | set(tokenize(f"{passage.chunk.heading} {passage.title}"))
        count, frequencies = self.document_frequencies(own)
        weights = [math.log(1 + (count - df + 0.5) / (df + 0.5)) for df in frequencies]
        prefixes = {stem[:length] for stem in stems for length in range(COVERAGE_PREFIX, len(stem) + 1)}
        absent = {
            t: w
            for t, w, df in zip(own, weights, frequencies)
            # Words no document holds are coverage's (below): counted once.
            if df > 0 and t not in stems and t[: max(COVERAGE_PREFIX, len(t) - 1)] not in prefixes
        }
        if absent:
            absent = {t: w for t, w in absent.items() if not _lemma_in(t, question, stems)}
        return 1.0 - sum(absent.values()) / (sum(weights) or 1.0)

    def _coverage(self, question: str, passages: Sequence[str | Passage]) -> float:
        """How much of what the question names the collection knows at all.

        A question on the documents' subject about something they never mention ("What did Elon Musk
        say about the talks?", "How do I write a test with pytest?") finds sentences about the subject,
        but its own rarest words occur in no document. The share of its content stems, weighted by
        collection idf, that no chunk holds and that no retrieved passage holds in another form (the
        first ``COVERAGE_PREFIX`` letters: "reacted" and "reaction") lowers the confidence. Stems the
        collection holds but the passages do not count as covered: SQuAD's questions paraphrase their
        paragraph, and counting those missed 5 % of its answerable questions at coverage 0.6.
        Without collection statistics (texts only), or in a collection smaller than ``COVERAGE_MIN_CHUNKS``
        chunks (where most words are absent, so absence says little: the user guide's 30 chunks lack
        "checked" and "them"), coverage is 1.
        """
        if self.document_frequencies is None:
            return 1.0
        own = [t for t in dict.fromkeys(tokenize(question)) if t not in _QUESTION_STEMS and t not in _LIGHT_STEMS]
        if not own:
            return 1.0
        found: set[str] = set()
        for passage in passages:
            extra = "" if isinstance(passage, str) else f"{passage.chunk.heading} {passage.title}"
            found.update(tokenize(f"{extra} {_text_of(passage)}"))
        prefixes = {stem[:COVERAGE_PREFIX] for stem in found if len(stem) >= COVERAGE_PREFIX}
        count, frequencies = self.document_frequencies(own)
        if count < COVERAGE_MIN_CHUNKS:
            return 1.0
        weights = [math.log(1 + (count - df + 0.5) / (df + 0.5)) for df in frequencies]
        unknown = {
            t: w
            for t, w, df in zip(own, weights, frequencies)
            if df == 0 and t not in found and not (len(t) >= COVERAGE_PREFIX and t[:COVERAGE_PREFIX] in prefixes)
        }
        if unknown:
            # An irregular form ("spoke") the collection holds as another ("speaking") is known.
            lemmas = {t: _lemma_stems(t, question) for t in unknown}
            wanted = sorted({stem for stems in lemmas.values() for stem in stems})
            known = {stem for stem, df in zip(wanted, self.document_frequencies(wanted)[1]) if df > 0} if wanted else set()
            unknown = {t: w for t, w in unknown.items() if not (lemmas[t] & (known | found))}
        return 1.0 - sum(unknown.values()) / (sum(weights) or 1.0)

    def answer_sentences(
        self, question: str, passages: Sequence[str | Passage], context: str = ""
    ) -> list[ScoredSentence]:
        """The sentences that make the answer, in reading order; empty when the passages are too weak."""
        return self.choose(self.score(question, passages, context))

    def choose(self, scoring: Scoring) -> list[ScoredSentence]:
        """The answer's sentences (in reading order), or none when ``scoring`` is below the abstention threshold."""
        scored = scoring.sentences
        if not scored or scoring.confidence < self.settings.abstain_below:
            return []
        best = _first_definition(scoring, _first_documented(scoring))
        chosen = [best]
        for candidate in scored:
            if candidate is best:
                continue
            if len(chosen) == self.settings.max_sentences:
                break
            if not scoring.same_place(candidate.passage_index, best.passage_index):
                continue  # another document's passage costs citation precision more than it adds answers
            if prose_score(candidate.span.text) < self.settings.min_prose:
                continue  # a heading or a code line is never worth a second sentence
            if candidate.score >= self.settings.second_sentence_ratio * best.score:
                chosen.append(candidate)
        return sorted(chosen, key=scoring.reading_order)


_SPEECH_QUESTION = re.compile(
    r"^\s*what\s+(?:did|does|do|has|have|had|will|would)\s+(?P<who>.+?)\s+(?:say|tell)\b", re.IGNORECASE
)
_SPEECH_CUE = re.compile(
    r"\b(?:said|says|say|saying|told|tells|tell|argued|argues|claimed|claims|stated|states|announced|announces"
    r"|confirmed|confirms|described|describes|wrote|writes|warned|warns|added|noted|explained|called|asked"
    r"|put it)\b",
    re.IGNORECASE,
)
_PRONOUN_CUE = re.compile(r"\b(?:he|she|they)\s+(?:\w+\s+)?(?:said|says|told|tells|added|argued|wrote|warned)\b", re.IGNORECASE)
_PRONOUNS = frozenset("he she they it him her them you we i".split())
SPEAKER_CUE_WORDS = 5
"""How many words after the speaker's name a verb of saying may stand ("Scott Bessent confirmed", "Bloomberg argued")."""


def speaker_quoted(question: str, sentences: Sequence[tuple[str, str]]) -> bool:
    """For "What did X say/tell ...?": whether a sentence reports X saying something; True for any other question.

    ``sentences`` are (passage text, sentence) pairs. A sentence reports it when a word of X's name is followed
    within ``SPEAKER_CUE_WORDS`` words by a verb of saying ("Treasury Secretary Scott Bessent confirmed",
    "Bloomberg argued"), follows "according to", or says "he told ..." right after a sentence naming X. A person the
    documents name but never quote ("What did Xi Jinping say about AI safety?", of an article where he only
    meets Trump) has nothing to answer with.
    """
    match = _SPEECH_QUESTION.match(question)
    if not match:
        return True
    names = {w.lower() for w in re.findall(r"[A-Za-z][\w'’-]*", match.group("who"))} - {"the", "a", "an", "of"}
    if not names or names & _PRONOUNS:
        # "What did she say ...?" is a follow-up about whoever the conversation named: the sentences
        # cannot tell who "she" is, so this check has nothing to go on (the answer is scored as usual).
        return True
    for passage, sentence in sentences:
        words = re.findall(r"[A-Za-z][\w'’-]*", sentence)
        lowered = [w.lower().removesuffix("'s").removesuffix("’s") for w in words]
        for position, word in enumerate(lowered):
            if word not in names:
                continue
            following = " ".join(words[position + 1 : position + 1 + SPEAKER_CUE_WORDS])
            preceding = " ".join(lowered[max(0, position - 3) : position])
            if _SPEECH_CUE.search(following) or "according to" in preceding:
                return True
        if _PRONOUN_CUE.search(sentence):
            # "he told" reports the person the sentence before names.
            before = passage[: max(passage.find(sentence), 0)].strip()
            previous = re.split(r"(?<=[.!?])\s+", before)[-1] if before else ""
            if names & {w.lower().removesuffix("'s") for w in re.findall(r"[A-Za-z][\w'’-]*", previous)}:
                return True
    return False


def _lemma_stems(stem: str, question: str) -> set[str]:
    """The stems of the lemmas of the words of ``question`` whose stem is ``stem`` ("spoke" -> {"speak"}).

    Stems miss irregular forms ("spoke" and "speaking", "began" and "begin"); simplemma's English lemma
    dictionary (imported here, only when a word is missing: it takes about 0.7 s to load) does not.
    """
    import simplemma

    found: set[str] = set()
    for word in re.findall(r"[A-Za-z]+", question):
        if tokenize(word) == [stem]:
            found.update(tokenize(simplemma.lemmatize(word.lower(), lang="en")))
    return found - {stem}


def _sentence_lemma_stems(sentence: str) -> set[str]:
    """The stems of the lemmas of ``sentence``'s words ("he told CNBC" -> {"he", "tell", "cnbc"}); see ``_lemma_stems``."""
    import simplemma

    return set(tokenize(" ".join(simplemma.lemmatize(w.lower(), lang="en") for w in re.findall(r"[A-Za-z]+", sentence))))


def _lemma_in(stem: str, question: str, stems: frozenset[str] | set[str]) -> bool:
    """Whether a word of ``question`` whose stem is ``stem`` has a lemma whose stem is in ``stems``."""
    return bool(_lemma_stems(stem, question) & set(stems))


def _api_names(sentence: str, question_stems: frozenset[str]) -> set[str]:
    """The stems of the question that a code name in ``sentence`` carries (`eventEmitter.once()` -> once)."""
    names = set()
    for match in _CODE_NAME.finditer(sentence):
        code = match.group(1) or match.group(2)
        # The name a call is known by is its last part: `eventEmitter.once()` is "once", not "event".
        last = re.split(r"[.#:]", re.sub(r"\(.*", "", code).strip())[-1]
        names.update(stem for stem in tokenize(last) if stem in question_stems)
    return names


def _first_documented(scoring: Scoring) -> ScoredSentence:
    """The best sentence, or an earlier one of the same document naming the same API, when it scores nearly as well.

    Reference documentation describes an API first where it introduces it (``emitter.once()``) and
    again in variants further down (``NodeEventTarget.once``); when the best sentence names an API that
    matches a question word, a sentence earlier in the same document naming it too, scoring at least
    ``FIRST_DOCUMENTED_RATIO`` of the best, is preferred. The best counts without its section-opening
    factor here: the variant's own section opens with it ("Node.js-specific extension ... adds a once
    listener" under ``nodeEventTarget.once``), and that factor would put the first documentation out of reach.
    """
    best = scoring.sentences[0]
    if scoring.positions is None:
        return best
    names = _api_names(best.span.text, scoring.question_stems)
    if not names:
        return best
    document, offset = scoring.positions[best.passage_index]
    best_at = offset + best.span.start
    earlier = [
        candidate
        for candidate in scoring.sentences[1:]
        if candidate.score >= FIRST_DOCUMENTED_RATIO * best.score / best.lead
        and scoring.positions[candidate.passage_index][0] == document
        and scoring.positions[candidate.passage_index][1] + candidate.span.start < best_at
        and _api_names(candidate.span.text, scoring.question_stems) & names
    ]
    return min(earlier, key=lambda c: scoring.positions[c.passage_index][1] + c.span.start) if earlier else best


_SUBJECT_QUESTION = re.compile(
    r"^\s*what\s+(?:(?:is|are)\s+(?P<x>.+?)(?:\s+(?:made(?:\s+up)?\s+of|composed\s+of|used\s+for|for))?"
    r"|does\s+(?P<y>.+?)\s+do)\s*\?*\s*$",
    re.IGNORECASE,
)
DEFINITION_RATIO = 0.7
"""How close to the best an earlier sentence defining the question's subject must score to be preferred."""


def asked_subject(question: str) -> tuple[str, ...]:
    """The stems of X in "What is/are X (made of, for)?" and "What does X do?"; empty for other questions.

    >>> asked_subject("What is a tuple made of?"), asked_subject("How do I read a file?")
    (('tupl',), ())
    """
    match = _SUBJECT_QUESTION.match(question)
    if not match:
        return ()
    words = tokenize(match.group("x") or match.group("y"))
    return tuple(dict.fromkeys(t for t in words if t not in _QUESTION_STEMS and t not in _LIGHT_STEMS))


def _defines(sentence: str, subject: tuple[str, ...]) -> bool:
    """Whether ``sentence`` opens with the subject ("A tuple consists of ...", "Tuples are ..."; not "Empty tuples")."""
    first = re.match(r"\W*(\w+)", sentence)
    if not first or not subject:
        return False
    opening = first.group(1).lower()
    if opening not in ("a", "an", "the") and not set(tokenize(opening)) & set(subject):
        return False
    return set(tokenize(sentence)[: len(subject)]) == set(subject)


def _first_definition(scoring: Scoring, best: ScoredSentence) -> ScoredSentence:
    """``best``, or an earlier sentence of its document that opens with the asked subject, when it scores nearly as well.

    Documents define a term where they introduce it ("A tuple consists of a number of values separated by
    commas"), then say more about it ("Empty tuples are constructed by ..."): for "What is X?" a sentence
    with X as its subject, at least ``DEFINITION_RATIO`` of the best (without its section-opening factor),
    earlier in the same document, is preferred.
    """
    if not scoring.subject or scoring.positions is None:
        return best
    document, offset = scoring.positions[best.passage_index]
    best_at = offset + best.span.start
    threshold = DEFINITION_RATIO * best.score / best.lead
    earlier = [
        candidate
        for candidate in scoring.sentences
        if candidate.score >= threshold
        and scoring.positions[candidate.passage_index][0] == document
        and scoring.positions[candidate.passage_index][1] + candidate.span.start <= best_at
        and _defines(candidate.span.text, scoring.subject)
    ]
    return min(earlier, key=lambda c: scoring.positions[c.passage_index][1] + c.span.start) if earlier else best


def _text_of(passage: str | Passage) -> str:
    return passage if isinstance(passage, str) else passage.text


def quotable_sentences(passage: str | Passage) -> list[tuple[Span, float]]:
    """The sentences of a passage that may answer, each with a factor for its score.

    Of a passage whose chunk knows its blocks: the sentences of its prose and list blocks, but not a
    fragment (a piece that starts in lower case where the chunk cuts a sentence, or runs to the chunk's
    end unfinished); a sentence that a code block interrupts counts at ``INTERRUPTED_FACTOR`` (it is
    shown whole, with the code, but says less on its own). Offsets stay relative to the passage text.
    Of any other passage: every sentence, at factor 1.
    """
    if isinstance(passage, str) or not passage.chunk.blocks:
        return [(span, 1.0) for span in split_sentences(_text_of(passage))]
    text = passage.text
    blocks = whole_lists(passage.text, sorted(passage.chunk.blocks))
    found: list[tuple[Span, float]] = []
    for number, (start, end, kind) in enumerate(blocks):
        if kind not in QUOTABLE_KINDS:
            continue
        sentences = split_sentences(text[start:end])
        for position, sentence in enumerate(sentences):
            span = Span(sentence.text, sentence.start + start, sentence.end + start)
            unfinished = not _FINISHED.search(span.text.rstrip())
            if span.start == 0 and span.text[:1].islower():
                continue  # the chunk begins inside a sentence
            last_in_block = position == len(sentences) - 1
            following = blocks[number + 1][2] if number + 1 < len(blocks) else None
            if unfinished and last_in_block and following is None and end >= len(text.rstrip()):
                continue  # the chunk ends inside a sentence
            factor = INTERRUPTED_FACTOR if unfinished and last_in_block and following == "code" else 1.0
            if _DEPENDENT_OPENER.match(span.text):
                factor *= DEPENDENT_FACTOR
            found.append((span, factor))
    return found


def _split_camel_case(text: str) -> str:
    """``net.createServer()`` as ``net.create Server()``: an API's name holds the words it is asked by."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text)


def section_leads(chunks: Sequence[Chunk]) -> frozenset[int]:
    """Document offsets of the first ``LEAD_SENTENCES`` prose sentences of each section of a document.

    ``chunks`` are the document's chunks in order (``IndexStore.document_chunks``); a chunk never straddles
    two headings, so a run of chunks with one heading path is one section. Only prose counts: an API's
    parameter list comes before the sentence that says what it does ("* Returns: {net.Server}" before
    "Creates a new TCP or IPC server."). Sentences are split as :func:`quotable_sentences` splits them.
    """
    found: set[int] = set()
    heading: str | None = None
    count = 0
    for chunk in chunks:
        first = chunk.heading != heading
        if first:
            heading, count = chunk.heading, 0
        if count >= LEAD_SENTENCES or not chunk.blocks:
            continue
        for start, end, kind in whole_lists(chunk.text, sorted(chunk.blocks)):
            line_start = chunk.text.rfind("\n", 0, start) + 1
            opening = chunk.text[start:end].lstrip()
            if kind != "prose" or chunk.text[line_start:start].isspace() or opening[:1].islower() or opening[:2] == "**":
                continue  # an indented or lower-case line goes on with a list item ("    **Default:** `false`.")
            if start == 0 and not first:
                continue  # a chunk that starts inside its section starts inside something: a list, a sentence
            for sentence in split_sentences(chunk.text[start:end]):
                at = chunk.start + start + sentence.start
                if count == LEAD_SENTENCES:
                    break
                if at not in found:
                    found.add(at)
                    count += 1
            if count == LEAD_SENTENCES:
                break
    return frozenset(found)


def _candidates(passages: Sequence[str | Passage]) -> list[tuple[int, Span, float]]:
    """(passage index, sentence, factor) for every quotable sentence, each text once."""
    candidates = []
    seen: set[str] = set()
    for index, passage in enumerate(passages):
        for span, factor in quotable_sentences(passage):
            if looks_like_instruction(span.text):
                continue  # addressed to the assistant: never an answer, no part of the confidence (issue 10)
            # The same sentence in two passages (a page and its PDF print, overlapping chunks)
            # is one candidate, cited from the better-ranked passage.
            key = span.clean.lower()
            if key not in seen:
                seen.add(key)
                candidates.append((index, span, factor))
    return candidates


def _stem_match(
    question: str,
    context: str,
    sentence_stems: Sequence[set[str]],
    document_frequencies: DocumentFrequencies | None = None,
) -> list[float]:
    """Each sentence's idf-weighted share of the question's content stems (context stems count less).

    The idf is the collection's (BM25's, so a stem no document holds weighs most) when
    ``document_frequencies`` is given, else among the candidate sentences.
    """
    own = [t for t in dict.fromkeys(tokenize(question)) if t not in _QUESTION_STEMS]
    if context:
        # A follow-up's pronoun stands for what the context names: "he" is no word an answer must contain. Nor
        # is the kind of thing asked for ("Which *network* did he tell?" is answered by "he told CNBC").
        kind = _ANSWER_KIND.match(question)
        asked_kind = set(tokenize(kind.group("kind"))) if kind else set()
        own = [t for t in own if t not in _PRONOUN_STEMS and t not in asked_kind]
    stems = list(dict.fromkeys(own + [t for t in tokenize(context) if t not in _QUESTION_STEMS]))
    if document_frequencies is not None and stems:
        count, frequencies = document_frequencies(stems)
        idf = [math.log(1 + (count - df + 0.5) / (df + 0.5)) for df in frequencies]
    else:
        idf = _inverse_frequency(stems, sentence_stems)
    weights = dict(zip(stems, idf))
    for stem in stems[len(own) :]:
        weights[stem] *= CONFIDENCE_CONTEXT_WEIGHT
    total = sum(weights.values()) or 1.0
    return [sum(weights[t] for t in stems if t in found) / total for found in sentence_stems]


def _token_match(
    question: Encoding,
    with_context: Encoding | None,
    candidates: Sequence[tuple[int, Span, float]],
    sentences: Sequence[Encoding],
) -> tuple[list[float], dict[int, float]]:
    """BERTScore-style recall of the question's tokens in each sentence and in each passage.

    Returns the sentence values (in candidate order) and the passage values (by passage index).
    """
    keep = [i for i, piece in enumerate(question.tokens) if _informative(piece)]
    pieces = [question.tokens[i] for i in keep]
    vectors = [question.token_vectors[keep]]
    if with_context is not None:
        # The context's own tokens (those after the question's) at CONTEXT_TERM_WEIGHT.
        extra = [
            i for i in range(len(question.tokens), len(with_context.tokens)) if _informative(with_context.tokens[i])
        ]
        pieces += [with_context.tokens[i] for i in extra]
        vectors.append(with_context.token_vectors[extra])
    if not pieces:
        return [0.0] * len(sentences), {index: 0.0 for index, _, _ in candidates}
    query = np.vstack(vectors).astype(np.float32)
    weights = np.array(_inverse_frequency(pieces, [set(e.tokens) for e in sentences]))
    if with_context is not None:
        weights[len(keep) :] *= CONTEXT_TERM_WEIGHT
    weights /= weights.sum()
    best_by_sentence = [
        (query @ e.token_vectors.T.astype(np.float32)).max(axis=1) if len(e.tokens) else np.zeros(len(pieces))
        for e in sentences
    ]
    best_by_passage: dict[int, np.ndarray] = {}
    for (index, _, _), best in zip(candidates, best_by_sentence):
        best_by_passage[index] = np.maximum(best_by_passage.get(index, best), best)
    return [float(b @ weights) for b in best_by_sentence], {i: float(b @ weights) for i, b in best_by_passage.items()}


def _informative(piece: str) -> bool:
    return bool(re.match(r"^(?:##)?\w", piece)) and piece not in _UNINFORMATIVE_PIECES


def _inverse_frequency(terms: Sequence[str], documents: Sequence[set[str]]) -> list[float]:
    """log(1 + (n + 1) / (1 + df)) of each term (in order) over the ``n`` documents' term sets."""
    wanted = set(terms)
    frequency = Counter(t for found in documents for t in found if t in wanted)
    return [math.log(1 + (len(documents) + 1) / (1 + frequency[t])) for t in terms]
