"""Split documents into token-bounded chunks that keep their heading, page and character offsets.

Sections (headings) are split first, so a chunk never straddles two headings. Inside a section the
text is cut into units at paragraph, line and sentence ends, and units are packed greedily into
chunks of at most ``chunk_tokens`` model tokens, neighbours sharing up to ``overlap_tokens`` of whole
units. A unit longer than a chunk (a run-on paragraph, a long code line) is cut by LangChain's
recursive splitter on clause and word boundaries. Lengths are counted with the embedding model's
own tokenizer, so no chunk is truncated by the model. A code block (a block the loader classified as
code, see :mod:`index.structure`) is one unit when it fits in a chunk, and it is glued to the paragraph
that introduces it ("For example:", or a sentence the code interrupts, "..., so that") and to the words
that finish that sentence after it, so an answer can show the example with its explanation.

Two bounds besides the token limit (``index.limits``): a chunk has at most ``max_chars`` characters,
because the tokenizer reads a run without spaces (a 300,000-character "word", a long line of Thai) as
one unknown token, so tokens alone let a chunk grow without end; and a document may make at most
``max_chunks`` chunks, checked as its units are counted, before any embedding. A unit longer than
``max_chars`` is first cut into windows at the last whitespace inside each (or anywhere when there is
none): the recursive splitter would otherwise cut a 50 MB line into 50 million one-character strings.

Why our own packing rather than LangChain's recursive splitter for everything: that splitter emits
a short paragraph (a title, a heading line) as a chunk of its own whenever the next paragraph is too
long to join it, which on SciFact gave a title-only chunk for every abstract (15,971 chunks for
5,183 abstracts; packed, about 10,600) and such chunks rank badly and cite nothing.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from index.limits import LimitExceeded, check_time_budget
from index.types import Chunk, Document

# Unit boundaries: blank lines, line ends, and whitespace after a sentence end.
_UNIT_BOUNDARY = re.compile(r"\n\s*\n|\n|(?<=[.!?])\s+")
# In a prose block a line end is wrapping: only blank lines and sentence ends cut it.
_SENTENCE_BOUNDARY = re.compile(r"\n\s*\n|(?<=[.!?])\s+")
# For units longer than a chunk: clause, word, character, coarsest first.
_LONG_UNIT_SEPARATORS = [r"(?<=[;:,])\s+", r"\s+", ""]


@dataclass(frozen=True)
class ChunkerSettings:
    """How documents are cut; recorded in the index manifest so reopening never guesses."""

    chunk_tokens: int = 200
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ValueError(f"chunk_tokens must be >= 16, got {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens must be in [0, chunk_tokens), got {self.overlap_tokens}"
            )


def embedding_text(chunk: Chunk, title: str) -> str:
    """What the model embeds and BM25 indexes for a chunk: its heading path (or the document title) and its text.

    The heading gives a chunk cut from the middle of a section the context a reader would have;
    it is skipped when the chunk already starts with it. Indexing BM25 over the same text matters:
    over bare chunk text, SciFact BM25 lost the title on every chunk but the first (nDCG@10 0.652
    against 0.679 with it).

    >>> embedding_text(Chunk("c", "d", "Second part.", 0, 12, heading="Guide > Install"), "Guide")
    'Guide > Install\\nSecond part.'
    """
    context = chunk.heading or title
    if not context or chunk.text.startswith(context.split(" > ")[-1]):
        return chunk.text
    return f"{context}\n{chunk.text}"


def chunk_id(document_id: str, start: int, text: str) -> str:
    """A chunk id derived from its document, position and content: stable across re-ingests."""
    digest = hashlib.sha1(f"{document_id}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:20]


class Chunker:
    """Cuts a Document into Chunks of at most ``settings.chunk_tokens`` model tokens.

    >>> chunker = Chunker(count_tokens=lambda text: len(text.split()), settings=ChunkerSettings(16, 4))
    >>> doc = Document(id="d", source="d.txt", title="d", text="one two three. " * 20)
    >>> chunks = chunker.split(doc)
    >>> all(doc.text[c.start:c.end] == c.text for c in chunks), max(c.token_count for c in chunks) <= 16
    (True, True)
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        settings: ChunkerSettings,
        *,
        max_chars: int = 3_000,
        max_chunks: int | None = None,
    ) -> None:
        if max_chars < 100:
            raise ValueError(f"max_chars must be >= 100, got {max_chars}")
        self.settings = settings
        self.max_chars = max_chars
        self.max_chunks = max_chunks
        self._count_tokens = count_tokens
        # Imported here: the store reads ChunkerSettings from this module, and a search should not load LangChain.
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self._long_unit_splitter = RecursiveCharacterTextSplitter(
            separators=_LONG_UNIT_SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            chunk_size=settings.chunk_tokens,
            chunk_overlap=settings.overlap_tokens,
            length_function=count_tokens,
            strip_whitespace=True,
        )

    def split(self, document: Document) -> list[Chunk]:
        """All chunks of ``document`` in reading order; empty when it has no text.

        Raises ``LimitExceeded`` when the document would make more than ``max_chunks`` chunks.
        """
        chunks: list[Chunk] = []
        budget = _ChunkBudget(self.max_chunks, self.settings.chunk_tokens, self.max_chars)
        blocks = _unit_blocks(document)
        for section_start, section_end, heading in _section_spans(document):
            units = self._block_units(document.text, section_start, section_end, blocks, budget)
            for start, end in self._pack(units):
                piece = document.text[start:end]
                chunks.append(
                    Chunk(
                        id=chunk_id(document.id, start, piece),
                        document_id=document.id,
                        text=piece,
                        start=start,
                        end=end,
                        page=document.page_at(start),
                        heading=heading,
                        token_count=self._count_tokens(piece),
                        blocks=_blocks_between(blocks, start, end),
                    )
                )
        return chunks

    def _block_units(
        self, text: str, start: int, end: int, blocks: list[tuple[int, int, str]], budget: _ChunkBudget
    ) -> list[tuple[int, int, int]]:
        """Units of ``text[start:end]`` following its classified blocks: a code block whole (when it fits) and
        glued to the paragraph that introduces it, a prose block cut at sentence ends only (its line breaks
        are wrapping), anything else line by line. A document without blocks is cut at paragraphs, lines
        and sentences."""
        budget.new_section()
        if not blocks:
            return self._units(text, start, end, budget)
        units: list[tuple[int, int, int]] = []
        # For each whole code unit: the index of the first unit of the prose block just before it.
        introduced: dict[int, int] = {}
        position, previous_prose = start, None
        # Blocks are sorted and do not overlap: start at the first one ending after ``start`` (a file of
        # 20,000 headings has 20,000 sections; scanning every block for each was quadratic).
        first = bisect.bisect_right(blocks, start, key=lambda block: block[1])
        for block_start, block_end, kind in blocks[first:]:
            if block_start >= end:
                break
            if block_end <= position:
                continue
            block_start, block_end = max(block_start, position), min(block_end, end)
            units += self._units(text, position, block_start, budget)  # text no block covers (none, normally)
            first = len(units)
            if (
                kind == "code"
                and block_end - block_start <= self.max_chars
                and len(whole := self._trimmed_units(text, block_start, block_end)) == 1
            ):
                if previous_prose is not None and previous_prose < first:
                    introduced[first] = previous_prose
                units += budget.count(whole)
            elif kind == "prose":
                units += self._units(text, block_start, block_end, budget, _SENTENCE_BOUNDARY)
            else:
                units += self._units(text, block_start, block_end, budget)
            previous_prose = first if kind == "prose" else None
            position = block_end
        units += self._units(text, position, end, budget)
        return self._glue_introductions(text, units, introduced)

    def _glue_introductions(
        self, text: str, units: list[tuple[int, int, int]], introduced: dict[int, int]
    ) -> list[tuple[int, int, int]]:
        """Join each code unit to the paragraph before it (or, when both do not fit in a chunk, to that
        paragraph's last sentence), and to the lower-case words after it that finish a sentence the code
        interrupted ("..., so that" code "will print 5.")."""
        glued: list[tuple[int, int, int]] = []
        index = 0
        while index < len(units):
            code = next((c for c in introduced if c > index and introduced[c] <= index < c), None)
            if code is None or introduced[code] != index:
                glued.append(units[index])
                index += 1
                continue
            last = code
            interrupted = not _SENTENCE_FINISHED.search(text[units[code - 1][0] : units[code - 1][1]].rstrip())
            if interrupted and code + 1 < len(units) and text[units[code + 1][0] : units[code + 1][1]][:1].islower():
                last = code + 1
            for first in (index, code - 1):
                if units[last][1] - units[first][0] > self.max_chars:
                    continue
                tokens = self._count_tokens(text[units[first][0] : units[last][1]])
                if tokens <= self.settings.chunk_tokens:
                    glued.extend(units[index:first])
                    glued.append((units[first][0], units[last][1], tokens))
                    break
            else:
                glued.extend(units[index : last + 1])
            index = last + 1
        return glued


    def _units(
        self,
        text: str,
        start: int,
        end: int,
        budget: _ChunkBudget,
        boundaries: re.Pattern[str] | None = None,
    ) -> list[tuple[int, int, int]]:
        """(start, end, tokens) of each sentence or line in text[start:end], whitespace trimmed."""
        units: list[tuple[int, int, int]] = []
        position = start
        for boundary in (boundaries or _UNIT_BOUNDARY).finditer(text, start, end):
            for window_start, window_end in self._windows(text, position, boundary.start()):
                units.extend(budget.count(self._trimmed_units(text, window_start, window_end)))
            position = boundary.end()
        for window_start, window_end in self._windows(text, position, end):
            units.extend(budget.count(self._trimmed_units(text, window_start, window_end)))
        return units

    def _windows(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """text[start:end] as spans of at most ``max_chars``, cut at the last whitespace of each when there is one."""
        windows: list[tuple[int, int]] = []
        while end - start > self.max_chars:
            check_time_budget()
            limit = start + self.max_chars
            cut = max(text.rfind(space, start + self.max_chars // 2, limit) for space in " \n\t")
            cut = cut + 1 if cut > start else limit
            windows.append((start, cut))
            start = cut
        windows.append((start, end))
        return windows

    def _trimmed_units(self, text: str, start: int, end: int) -> list[tuple[int, int, int]]:
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            return []
        start += len(piece) - len(piece.lstrip())
        end = start + len(stripped)
        check_time_budget()
        tokens = self._count_tokens(stripped)
        if tokens <= self.settings.chunk_tokens:
            return [(start, end, tokens)]
        parts, search_from = [], start
        for part in self._long_unit_splitter.split_text(stripped):
            offset = text.find(part, search_from, end)
            if offset < 0:  # the splitter only strips and joins, so this means a bug
                raise AssertionError(f"split text not found at offset {search_from}")
            parts.append((offset, offset + len(part), self._count_tokens(part)))
            search_from = offset + 1
        return parts

    def _pack(self, units: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """Greedy packing of units into (start, end) spans of at most chunk_tokens and max_chars, with unit overlap."""
        spans: list[tuple[int, int]] = []
        first = 0
        while first < len(units):
            last, total = first, units[first][2]
            while (
                last + 1 < len(units)
                and total + units[last + 1][2] <= self.settings.chunk_tokens
                and units[last + 1][1] - units[first][0] <= self.max_chars
            ):
                last += 1
                total += units[last][2]
            spans.append((units[first][0], units[last][1]))
            if last + 1 >= len(units):
                break
            next_first, shared = last + 1, 0
            while next_first - 1 > first and shared + units[next_first - 1][2] <= self.settings.overlap_tokens:
                next_first -= 1
                shared += units[next_first][2]
            # The overlap must leave room for the next unit, or the next chunk would end where this one does
            # (a long unit, such as a code block with its introduction, after a few short ones).
            while next_first <= last and (
                shared + units[last + 1][2] > self.settings.chunk_tokens
                or units[last + 1][1] - units[next_first][0] > self.max_chars
            ):
                shared -= units[next_first][2]
                next_first += 1
            first = next_first
        return spans


class _ChunkBudget:
    """Counts a document's units as they are made and stops when it cannot fit in ``max_chunks`` chunks.

    Packing puts at most ``chunk_tokens`` tokens and ``max_chars`` characters in a chunk and never
    joins two sections, so a section needs at least its tokens / chunk_tokens and its characters /
    max_chars chunks (rounded up): known before packing and embedding, so a file of 20,000 headings
    or a 50 MB line (one unknown token per window) is refused in seconds.
    """

    def __init__(self, max_chunks: int | None, chunk_tokens: int, max_chars: int) -> None:
        self.max_chunks = max_chunks
        self.chunk_tokens = chunk_tokens
        self.max_chars = max_chars
        self.closed_sections = 0  # chunks needed at least by the sections before this one
        self.section_tokens = 0
        self.section_chars = 0

    def _section_needs(self) -> int:
        return max(-(-self.section_tokens // self.chunk_tokens), -(-self.section_chars // self.max_chars))

    def new_section(self) -> None:
        self.closed_sections += self._section_needs()
        self.section_tokens = self.section_chars = 0

    def count(self, units: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        if self.max_chunks is None:
            return units
        for start, end, tokens in units:
            # A unit never shares a chunk with more than chunk_tokens of others.
            self.section_tokens += min(tokens, self.chunk_tokens)
            self.section_chars += end - start
        if self.closed_sections + self._section_needs() > self.max_chunks:
            raise LimitExceeded(
                f"too many chunks: more than {self.max_chunks:,} for one document "
                "(RAG_MAX_CHUNKS_PER_DOCUMENT raises the limit)"
            )
        return units


_SENTENCE_FINISHED = re.compile(r"[.!?][\"'”’)\]]*$")


def _blocks_between(blocks: list[tuple[int, int, str]], start: int, end: int) -> tuple[tuple[int, int, str], ...]:
    """What a chunk stores: the sorted blocks overlapping ``[start, end)``, clipped and relative to ``start``."""
    first = bisect.bisect_right(blocks, start, key=lambda block: block[1])
    found = []
    for block_start, block_end, kind in blocks[first:]:
        if block_start >= end:
            break
        found.append((max(block_start, start) - start, min(block_end, end) - start, kind))
    return tuple(found)


def _unit_blocks(document: Document) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the document's blocks in order, without overlaps."""
    spans: list[tuple[int, int, str]] = []
    for block in sorted(document.blocks, key=lambda b: b.start):
        if not spans or block.start >= spans[-1][1]:
            spans.append((block.start, block.end, block.kind))
    return spans


def _section_spans(document: Document) -> list[tuple[int, int, str]]:
    """(start, end, heading path) for each section, covering the text before the first heading too."""
    starts = sorted({(section.start, section.heading) for section in document.sections})
    spans: list[tuple[int, int, str]] = []
    previous_start, previous_heading = 0, ""
    for start, heading in starts:
        if start > previous_start:
            spans.append((previous_start, start, previous_heading))
        previous_start, previous_heading = start, heading
    spans.append((previous_start, len(document.text), previous_heading))
    return spans
