"""Plain data types of the query side: a retrieved Passage, a Citation, an Answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from index.types import Chunk


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk with where it came from and how it ranked.

    ``score`` is the retriever's own score (cosine for dense, BM25 for lexical, the fused score
    for hybrid); ``rank`` starts at 1.
    """

    chunk: Chunk
    score: float
    rank: int
    retriever: str
    source: str
    title: str

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def document_id(self) -> str:
        return self.chunk.document_id

    @property
    def chunk_id(self) -> str:
        return self.chunk.id

    @property
    def page(self) -> int | None:
        return self.chunk.page

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-ready dict (what ``rag search --json`` prints)."""
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "retriever": self.retriever,
            "document_id": self.chunk.document_id,
            "chunk_id": self.chunk.id,
            "source": self.source,
            "title": self.title,
            "page": self.chunk.page,
            "heading": self.chunk.heading,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "text": self.chunk.text,
        }


@dataclass(frozen=True)
class Citation:
    """A ``[marker]`` in an answer and the passage span it points to."""

    marker: int
    document_id: str
    chunk_id: str
    source: str
    title: str
    page: int | None
    start: int
    end: int
    quote: str
    supported: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """An answer text with ``[n]`` markers, its verified citations and the passages it was given."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    abstained: bool = False
    unsupported_sentences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "unsupported_sentences": list(self.unsupported_sentences),
            "passages": [p.to_dict() for p in self.passages],
        }


@dataclass(frozen=True)
class AnswerDelta:
    """One step of a streamed answer: new text to append, and on the last step the full Answer."""

    text: str = ""
    answer: Answer | None = None
