"""Plain data types of the ingestion side: a loaded Document and the Chunks it is split into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from index.structure import Block


@dataclass(frozen=True)
class Section:
    """A span of a document's text under one heading path (e.g. "Install > On Linux")."""

    start: int
    heading: str


@dataclass
class Document:
    """One source document, its text extracted and normalised.

    ``id`` is stable across runs: the normalised absolute path of the file, or the id a
    BEIR-style JSONL corpus gives. ``page_starts`` holds the character offset where each page
    begins (PDF only; page n starts at ``page_starts[n-1]``). ``sections`` lists where each
    heading's section starts (Markdown, HTML, DOCX, and PDF where its fonts show headings). ``blocks``
    classifies the text's blocks (prose, heading, code, references, ...; see :mod:`index.structure`).
    """

    id: str
    source: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    page_starts: list[int] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset``, or None when the format has no pages."""
        if not self.page_starts:
            return None
        page = 1
        for number, start in enumerate(self.page_starts, start=1):
            if start <= offset:
                page = number
            else:
                break
        return page


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough for the embedding model.

    ``start``/``end`` are character offsets into the document's text, so ``document.text[start:end]``
    is the chunk's text and a citation can be highlighted in its source. ``blocks`` holds the kinds of
    the blocks it overlaps as ``(start, end, kind)`` relative to its text (empty when the document was
    not classified: every sentence then counts as prose).
    """

    id: str
    document_id: str
    text: str
    start: int
    end: int
    page: int | None = None
    heading: str = ""
    token_count: int = 0
    blocks: tuple[tuple[int, int, str], ...] = ()
