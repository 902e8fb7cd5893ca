"""Split documents into token-bounded chunks that keep their heading, page and character offsets.

Sections (headings) are split first, so a chunk never straddles two headings; inside a section
LangChain's recursive splitter cuts on paragraph, line, sentence and word boundaries, counting
length with the embedding model's own tokenizer so no chunk is truncated by the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.types import Chunk, Document

# Paragraph, line, sentence end, clause, word, character: coarsest first.
_SEPARATORS = [r"\n\n", r"\n", r"(?<=[.!?])\s+", r"(?<=[;:])\s+", r"\s+", ""]


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

    def __init__(self, count_tokens: Callable[[str], int], settings: ChunkerSettings) -> None:
        self.settings = settings
        self._count_tokens = count_tokens
        self._splitter = RecursiveCharacterTextSplitter(
            separators=_SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",
            chunk_size=settings.chunk_tokens,
            chunk_overlap=settings.overlap_tokens,
            length_function=count_tokens,
            strip_whitespace=True,
        )

    def split(self, document: Document) -> list[Chunk]:
        """All chunks of ``document`` in reading order; empty when it has no text."""
        chunks: list[Chunk] = []
        for section_start, section_end, heading in _section_spans(document):
            section_text = document.text[section_start:section_end]
            if not section_text.strip():
                continue
            search_from = 0
            for piece in self._splitter.split_text(section_text):
                offset = section_text.find(piece, search_from)
                if offset < 0:  # the splitter only strips and joins, so this means a bug
                    raise AssertionError(f"chunk text not found in {document.source}")
                search_from = offset + 1
                start = section_start + offset
                chunks.append(
                    Chunk(
                        id=chunk_id(document.id, start, piece),
                        document_id=document.id,
                        text=piece,
                        start=start,
                        end=start + len(piece),
                        page=document.page_at(start),
                        heading=heading,
                        token_count=self._count_tokens(piece),
                    )
                )
        return chunks


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
