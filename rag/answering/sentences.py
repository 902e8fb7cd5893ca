"""Split passage text into sentences with character offsets, and tell prose from headings, lists and code.

Both the extractive answerer (which picks sentences) and the citation checker (which quotes them) use this,
so a quoted span always maps back to exact offsets in the document text.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from index.embedding import Encoding

__all__ = ["EncodingCache", "Span", "prose_score", "split_sentences"]


@dataclass(frozen=True)
class Span:
    """A piece of a text and where it sits: ``text == source[start:end]``."""

    text: str
    start: int
    end: int

    @property
    def clean(self) -> str:
        """The text on one line, runs of white space collapsed (what an answer shows)."""
        return " ".join(self.text.split())


# Tokens that end with a period without ending a sentence. Short on purpose: a missed split
# only makes a sentence longer, a wrong split cuts a quote in half.
_ABBREVIATIONS = frozenset(
    "e.g i.e etc vs cf al mr mrs ms dr prof st jr sr no fig figs eq approx ca inc ltd co corp dept univ "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k".split()
)
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+")
_NEXT_STARTS_SENTENCE = re.compile(r"[\"'“‘(\[]?[A-Z0-9]")
_TERMINAL = re.compile(r"[.!?:;][\"'”’)\]]*$")
_LIST_OR_HEADING_START = re.compile(r"^\s*(?:[-*+•#>|]|\d+[.)]\s|```|\[\d+\])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]\s|\d+[.)]\s)")
# A line of source code or a shell session: never joined to its neighbours, never picked as an answer.
_CODE_LINE = re.compile(
    r"^\s*(?://|>>>|\.\.\.|\$ |#include|import |from \S+ import|def |class \w|return\b|const |let |var |function\b"
    r"|await |try\b|[{}])|[{};]\s*$|[\w\])]\s*[-+*/]?=\s*[\w'\"(\[{-]|=>|\w\([^)]*\)\s*:?\s*$"
)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
# A name in prose, not code: a call or a dunder name ("__init__()", "os.getcwd()", "__name__") and a
# Markdown link reference ("[IPC][]", "[`net.Server`][]", "[docs](url)"), whose brackets are markup.
_CODE_NAME = re.compile(r"\b_*[A-Za-z][\w.]*_*\(\)|\b__\w+__\b")
_LINK = re.compile(r"\[([^\]\n]+)\](?:\[[^\]\n]*\]|\([^)\s]*\))")


def split_sentences(text: str) -> list[Span]:
    """Sentences of ``text``, each with its offsets in ``text``.

    Blank lines, headings, list items and short lines break sentences; a line wrapped in the
    middle of a sentence (as PDF extraction leaves them) is joined to the next.

    >>> [s.text for s in split_sentences("Intro\\n\\nPython is easy. It was made by Guido\\nvan Rossum.")]
    ['Intro', 'Python is easy.', 'It was made by Guido\\nvan Rossum.']
    """
    spans: list[Span] = []
    for segment_start, segment_end in _segments(text):
        spans.extend(_split_segment(text, segment_start, segment_end))
    return spans


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line without its newline."""
    found, start = [], 0
    for match in re.finditer(r"\n", text):
        found.append((start, match.start()))
        start = match.end()
    found.append((start, len(text)))
    return found


def _joins_next(line: str, next_line: str) -> bool:
    """Whether ``next_line`` continues the sentence of ``line`` (a wrapped line, not a new item)."""
    if not line.strip() or not next_line.strip():
        return False
    if _CODE_LINE.search(line) or _CODE_LINE.search(next_line):
        return False
    if _TERMINAL.search(line.rstrip()) or _LIST_OR_HEADING_START.match(next_line):
        return False
    # A list item goes on in the indented lines under it ("* `listener` {Function} Common parameter of the"
    # / "  [`net.connect()`][] functions, ..."); a heading, a table row or a quote does not.
    if _LIST_OR_HEADING_START.match(line) and not (_LIST_ITEM.match(line) and next_line[:1] in " \t"):
        return False
    if _is_title_case(line):
        return False
    # Inline code, quotes and brackets open a word: "calling\n`fs.open()` is not recommended" goes on.
    first = next_line.lstrip().lstrip("`\"'“‘([*_")[:1]
    # A wrapped line goes on in lower case; a long line that stops mid-sentence also goes on
    # when the next starts with a capital (a name), whereas a short one is a heading or a label.
    return first.islower() or (len(line.strip()) >= 60 and first.isalnum())


def _is_title_case(line: str) -> bool:
    """A heading or title ("US and China to Launch Formal AI Safety Talks"): most words capitalised."""
    words = [w for w in _WORD.findall(line) if w[0].isalpha() and w.lower() not in _FUNCTION_WORDS]
    return len(words) >= 2 and sum(w[0].isupper() for w in words) / len(words) >= 0.7


def _segments(text: str) -> list[tuple[int, int]]:
    """Runs of lines that belong together (wrapped prose), as (start, end) offsets."""
    segments: list[tuple[int, int]] = []
    lines = _lines(text)
    current: tuple[int, int] | None = None
    in_fence = _starts_inside_fence([text[start:end] for start, end in lines])
    for index, (start, end) in enumerate(lines):
        if text[start:end].lstrip().startswith("```"):
            in_fence = not in_fence
        if not text[start:end].strip():
            if current:
                segments.append(current)
            current = None
            continue
        if in_fence:
            # Inside a fenced code block each line stands alone.
            if current:
                segments.append(current)
            segments.append((start, end))
            current = None
            continue
        current = (current[0], end) if current else (start, end)
        next_line = text[lines[index + 1][0] : lines[index + 1][1]] if index + 1 < len(lines) else ""
        if not _joins_next(text[start:end], next_line):
            segments.append(current)
            current = None
    if current:
        segments.append(current)
    return segments


def _starts_inside_fence(lines: list[str]) -> bool:
    """Whether the text begins inside a fenced code block (a chunk can start mid-block).

    So it does when its first fence is a bare ``` (a closing fence; an opening one often names the
    language) and a line before it is code.
    """
    for index, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            return line.strip() == "```" and any(_CODE_LINE.search(before) for before in lines[:index])
    return False


def _is_abbreviation(text: str, period_at: int) -> bool:
    word_start = period_at
    while word_start > 0 and not text[word_start - 1].isspace() and text[word_start - 1] not in "([\"'":
        word_start -= 1
    word = text[word_start:period_at].lower()
    # Single letters are initials ("J. R. R. Tolkien"); dotted runs are abbreviations ("U.S.").
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or bool(re.fullmatch(r"(?:\w\.)+\w", word))


def _split_segment(text: str, start: int, end: int) -> list[Span]:
    spans: list[Span] = []
    sentence_start = start
    for match in _SENTENCE_END.finditer(text, start, end):
        next_start = match.end()
        if next_start >= end or not _NEXT_STARTS_SENTENCE.match(text, next_start):
            continue
        if text[match.start()] == "." and _is_abbreviation(text, match.start()):
            continue
        spans.append(_trimmed(text, sentence_start, match.end()))
        sentence_start = next_start
    if sentence_start < end:
        spans.append(_trimmed(text, sentence_start, end))
    return [span for span in spans if span.text]


def _trimmed(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(text[start:end], start, end)


# Function words: prose is full of them, headings, link lists and title lines have few.
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for with from as and or but if then than that which who whom whose what when where "
    "why how is are was were be been being has have had do does did can could will would shall should may might must "
    "it its this these those there their they them he she his her we our you your not no into over under after "
    "before about between during through also only so such".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d[\d.,]*")
_CODE_CHARACTERS = re.compile(r"[{}()\[\]=<>;$_`\\/|*#]")


def prose_score(sentence: str) -> float:
    """How much ``sentence`` looks like a prose sentence, from 0 (a heading, link list, code) to 1.

    Uses only surface features that hold in any English document: length, share of function
    words, share of capitalised words (title-case headings and lists of titles), share of
    code characters, and whether it ends like a sentence.

    >>> prose_score("The default value is evaluated only once.") > 0.9
    True
    >>> prose_score("4.8.1. Default Argument Values") < 0.3
    True
    """
    # Inline code in Markdown (`fs.readFile()`), a called or dunder name (__init__()) and the brackets of a
    # Markdown link ("[IPC][]") are names inside prose, not code: counted as code characters, they put
    # "class instantiation automatically invokes __init__() ..." and "Creates a new TCP or [IPC][] server."
    # at a fifth of their score (shared_corpus_answers py-12, node-07).
    sentence = _CODE_NAME.sub("X", _INLINE_CODE.sub("X", _LINK.sub(r"\1", sentence)))
    words = _WORD.findall(sentence)
    if not words:
        return 0.0
    alphabetic = [w for w in words if w[0].isalpha()]
    function_share = sum(w.lower() in _FUNCTION_WORDS for w in alphabetic) / max(len(alphabetic), 1)
    capital_share = sum(w[0].isupper() and w.lower() not in _FUNCTION_WORDS for w in alphabetic) / max(
        len(alphabetic), 1
    )
    code_share = len(_CODE_CHARACTERS.findall(sentence)) / max(len(sentence), 1)
    score = 1.0
    if len(words) < 4:
        score *= 0.15
    elif len(words) < 7:
        score *= 0.6
    if function_share < 0.08:
        score *= 0.3
    elif function_share < 0.15:
        score *= 0.7
    # Many capitals with few function words is a title or a list of names; a sentence full of
    # names still has its "the", "that", "and" ("Secretary Scott Bessent confirmed that the ...").
    if capital_share > 0.6 and function_share < 0.25:
        score *= 0.3
    elif capital_share > 0.4 and function_share < 0.15:
        score *= 0.7
    if _CODE_LINE.search(sentence):
        score *= 0.3
    if code_share > 0.08:
        score *= 0.2
    elif code_share > 0.04:
        score *= 0.6
    if not _TERMINAL.search(sentence.rstrip()):
        score *= 0.6
    return score


class EncodingCache:
    """Encodes texts through ``encode`` (``Embedder.encode``) and remembers the most recent ``capacity``.

    Passages recur across questions (and a conversation asks about the same ones again), so their
    sentences are encoded once. Safe to share between threads (``Runnable.batch`` uses several).
    An entry holds a sentence's token vectors in float16, about 30 kB for a 40-token sentence: the
    default capacity keeps some 250 MB at most.

    >>> import numpy as np
    >>> from index.embedding import Encoding
    >>> fake = lambda texts: [Encoding(np.ones(2, np.float32), (t,), np.ones((1, 2), np.float16)) for t in texts]
    >>> cache = EncodingCache(fake, capacity=2)
    >>> cache.embed(["a", "b", "a"]).shape, cache.misses
    ((3, 2), 2)
    """

    def __init__(self, encode: Callable[[list[str]], list[Encoding]], capacity: int = 8_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._encode = encode
        self._encodings: OrderedDict[str, Encoding] = OrderedDict()
        self._lock = threading.Lock()
        self.capacity = capacity
        self.misses = 0

    def encode(self, texts: list[str]) -> list[Encoding]:
        """One encoding a text, in order; only texts not seen recently reach the model."""
        with self._lock:
            found = {text: self._encodings[text] for text in texts if text in self._encodings}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            # Encoded outside the lock: another thread may encode the same text meanwhile, which costs
            # time, never correctness.
            found.update(zip(missing, self._encode(missing)))
        with self._lock:
            self.misses += len(missing)
            for text in texts:
                self._encodings[text] = found[text]
                self._encodings.move_to_end(text)
            while len(self._encodings) > self.capacity:
                self._encodings.popitem(last=False)
        return [found[text] for text in texts]

    def embed(self, texts: list[str]) -> np.ndarray:
        """The texts' normalised sentence vectors, one row each (what ``Embedder.embed`` gives)."""
        encodings = self.encode(texts)
        return np.vstack([e.vector for e in encodings]) if encodings else np.zeros((0, 0), dtype=np.float32)
