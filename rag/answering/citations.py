"""Check an answer's ``[n]`` citations against the passages it was given: verified, never trusted.

A marker that points at no passage is removed. Every cited sentence is compared with its passage: it is
*supported* when enough of its content words occur in the passage (lexical coverage) or when it means
nearly the same as the passage's closest sentence (embedding cosine). The closest sentence becomes the
citation's quote, with its character offsets in the document text so a page can highlight it.

Thresholds, measured with ``python -m evals.answers calibrate-citations --index SCIFACT_INDEX`` on SciFact:
138 (claim, abstract that supports it) pairs, where the claim is a person's paraphrase, and 124 (claim, best
ranked abstract *not* cited for it) pairs, a hard negative on the same topic (and sometimes an uncited
support). With coverage ≥ 0.8 or cosine ≥ 0.75, 63 % of the supporting pairs and 13 % of the others are
judged supported, the best margin on the grid (coverage 0.7 / cosine 0.75: 71 % and 23 %; 0.8 / 0.8: 52 %
and 4 %). Answers that reuse a passage's wording, as extractive answers and most LLM answers do, pass
on coverage; a citation of an unrelated passage fails both tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.bm25 import tokenize
from rag.answering.sentences import Span, split_sentences
from rag.types import Citation, Passage

__all__ = [
    "SUPPORT_COSINE",
    "SUPPORT_COVERAGE",
    "CheckedAnswer",
    "SupportCheck",
    "check_support",
    "verify_citations",
]

SUPPORT_COVERAGE = 0.8
"""A sentence is supported when at least this share of its content stems occur in the cited passage."""
SUPPORT_COSINE = 0.75
"""... or when its cosine to the passage's closest sentence is at least this."""
MIN_CLAIM_STEMS = 3
"""An uncited sentence with fewer content stems ("Here is what I found:") is not a claim to check."""

# [1], [1, 2], [1][2], [1-3]
_MARKER = re.compile(r"\[(\d+(?:\s*(?:[,;]|-|–)\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[[\d,;\s\-–]+\])+\s*[.!?]?")

Embed = Callable[[list[str]], np.ndarray]
"""Texts -> L2-normalised vectors, one row per text (``Embedder.embed``)."""


@dataclass(frozen=True)
class SupportCheck:
    """How well one passage supports one sentence, and the passage span that supports it best."""

    quote: Span
    coverage: float
    cosine: float
    supported: bool


@dataclass
class CheckedAnswer:
    """An answer text with bad markers removed, its citations and the sentences nothing supports."""

    text: str
    citations: list[Citation]
    unsupported_sentences: list[str]


def _markers_in(text: str) -> list[int]:
    numbers: list[int] = []
    for match in _MARKER.finditer(text):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            bounds = re.split(r"\s*[-–]\s*", part)
            if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
                low, high = int(bounds[0]), int(bounds[1])
                numbers.extend(range(low, min(high, low + 20) + 1))
            elif part.strip().isdigit():
                numbers.append(int(part))
    return list(dict.fromkeys(numbers))


def _strip_markers(text: str) -> str:
    return re.sub(r"\s+([.!?,;:])", r"\1", " ".join(_MARKER.sub(" ", text).split()))


def check_support(sentence: str, passage_text: str, embed: Embed | None = None) -> SupportCheck:
    """Whether ``passage_text`` supports ``sentence``, and the passage sentence closest to it.

    >>> check = check_support("Python was created by Guido van Rossum.",
    ...                       "Python is a language. It was created by Guido van Rossum in 1991.")
    >>> check.supported, check.quote.text
    (True, 'It was created by Guido van Rossum in 1991.')
    >>> check_support("Rust was created by Mozilla.", "Python is a language.").supported
    False
    """
    claim_stems = set(tokenize(sentence))
    passage_spans = split_sentences(passage_text) or [Span(passage_text, 0, len(passage_text))]
    coverage = len(claim_stems & set(tokenize(passage_text))) / len(claim_stems) if claim_stems else 0.0
    overlaps = [len(claim_stems & set(tokenize(span.text))) / max(len(claim_stems), 1) for span in passage_spans]
    cosines = [0.0] * len(passage_spans)
    if embed is not None:
        vectors = embed([sentence] + [span.clean for span in passage_spans])
        cosines = [float(v) for v in vectors[1:] @ vectors[0]]
    best = max(range(len(passage_spans)), key=lambda i: overlaps[i] + cosines[i])
    cosine = max(cosines)
    supported = bool(claim_stems) and (coverage >= SUPPORT_COVERAGE or cosine >= SUPPORT_COSINE)
    return SupportCheck(quote=passage_spans[best], coverage=coverage, cosine=cosine, supported=supported)


def citation_for(marker: int, passage: Passage, check: SupportCheck) -> Citation:
    """A Citation of ``passage`` quoting ``check.quote``, its offsets moved from the chunk into the document."""
    return Citation(
        marker=marker,
        document_id=passage.document_id,
        chunk_id=passage.chunk_id,
        source=passage.source,
        title=passage.title,
        page=passage.page,
        start=passage.chunk.start + check.quote.start,
        end=passage.chunk.start + check.quote.end,
        quote=check.quote.clean,
        supported=check.supported,
    )


def _sentences_with_markers(text: str) -> list[tuple[str, list[int]]]:
    """(sentence, its markers); a run of markers standing alone after a full stop joins the sentence before."""
    pieces: list[tuple[str, list[int]]] = []
    for span in split_sentences(text):
        sentence = span.text
        leading = _LEADING_MARKERS.match(sentence)
        if leading and pieces:
            # "... oiled. [2] Tea is ...": the [2] closes the sentence before.
            previous, markers = pieces[-1]
            pieces[-1] = (f"{previous} {leading.group(0).strip()}", markers + _markers_in(leading.group(0)))
            sentence = sentence[leading.end() :].strip()
        if sentence:
            pieces.append((sentence, _markers_in(sentence)))
    return pieces


def _keep_valid_markers(text: str, valid: set[int]) -> str:
    """``text`` with every marker group reduced to its valid numbers (and gone when none is valid)."""

    def rewrite(match: re.Match[str]) -> str:
        kept = [n for n in _markers_in(match.group(0)) if n in valid]
        return " " + "".join(f"[{n}]" for n in kept) if kept else ""

    return re.sub(r"\s*" + _MARKER.pattern, rewrite, text)


def verify_citations(text: str, passages: Sequence[Passage], embed: Embed | None = None) -> CheckedAnswer:
    """Verify every ``[n]`` of ``text`` against ``passages`` (``[1]`` is ``passages[0]``).

    Markers outside 1..len(passages) are removed from the text. Each remaining (sentence, marker)
    pair gives a Citation whose ``supported`` says whether the passage supports the sentence; a
    sentence with no supporting citation, or a claim with no citation at all, is listed in
    ``unsupported_sentences``. Lines are kept as the answer wrote them.

    Example (``passages`` as returned by ``Retriever.search``)::

        checked = verify_citations("Python is old [1]. It is fast [7].", passages)
        checked.text                       # "Python is old [1]. It is fast."
        [c.supported for c in checked.citations], checked.unsupported_sentences
    """
    valid = set(range(1, len(passages) + 1))
    citations: list[Citation] = []
    unsupported: list[str] = []
    for sentence, markers in _sentences_with_markers(text):
        claim = _strip_markers(sentence)
        kept = [n for n in markers if n in valid]
        if not kept:
            if len(set(tokenize(claim))) >= MIN_CLAIM_STEMS and not is_abstention(claim):
                unsupported.append(claim)
            continue
        checks = [(n, check_support(claim, passages[n - 1].text, embed)) for n in kept]
        citations.extend(citation_for(n, passages[n - 1], check) for n, check in checks)
        if not any(check.supported for _, check in checks):
            unsupported.append(claim)
    return CheckedAnswer(
        text=_keep_valid_markers(text, valid).strip(), citations=citations, unsupported_sentences=unsupported
    )


ABSTENTION_TEXT = "The documents don't answer this question."
_ABSTENTION_PATTERNS = re.compile(
    r"not (?:found |mentioned |stated |answered |covered )?in the (?:provided |given )?(?:documents|passages|context)"
    r"|(?:documents|passages|context) (?:do not|don't|does not|doesn't) (?:answer|say|mention|contain)"
    r"|cannot be answered from",
    re.IGNORECASE,
)


def is_abstention(text: str) -> bool:
    """Whether an answer says the documents do not answer the question.

    >>> is_abstention("This is not in the documents."), is_abstention("Paris is in France [1].")
    (True, False)
    """
    return bool(_ABSTENTION_PATTERNS.search(text))
