"""Plain data types of the query side: a retrieved Passage, a Citation, an Answer.

Each has ``to_dict`` (JSON-ready) and ``from_dict`` (its inverse), so a saved conversation or a
feedback record can be read back into the same objects the page renders.

>>> answer = Answer(text="It boils. [1]", query="kettle boils")
>>> Answer.from_dict(answer.to_dict()) == answer
True
"""

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        """The passage ``to_dict`` described (the chunk's token count is not kept, so it reads 0)."""
        chunk = Chunk(
            id=str(data["chunk_id"]),
            document_id=str(data["document_id"]),
            text=str(data["text"]),
            start=int(data["start"]),
            end=int(data["end"]),
            page=data.get("page"),
            heading=str(data.get("heading") or ""),
        )
        return cls(
            chunk=chunk,
            score=float(data.get("score", 0.0)),
            rank=int(data.get("rank", 0)),
            retriever=str(data.get("retriever", "")),
            source=str(data.get("source", "")),
            title=str(data.get("title", "")),
        )


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Citation:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class Answer:
    """An answer text with ``[n]`` markers, its verified citations and the passages it was given.

    ``query`` is the standalone query the passages were retrieved with (a follow-up rewritten
    with the conversation; the question itself otherwise), empty when not known.
    """

    text: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    abstained: bool = False
    unsupported_sentences: list[str] = field(default_factory=list)
    query: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "unsupported_sentences": list(self.unsupported_sentences),
            "passages": [p.to_dict() for p in self.passages],
            "query": self.query,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The answer ``to_dict`` described. Raises ``KeyError``/``ValueError``/``TypeError`` for malformed data."""
        return cls(
            text=str(data["text"]),
            citations=[Citation.from_dict(c) for c in data.get("citations", [])],
            passages=[Passage.from_dict(p) for p in data.get("passages", [])],
            abstained=bool(data.get("abstained", False)),
            unsupported_sentences=[str(s) for s in data.get("unsupported_sentences", [])],
            query=str(data.get("query", "")),
        )


@dataclass(frozen=True)
class AnswerDelta:
    """One step of a streamed answer: new text to append, and on the last step the full Answer."""

    text: str = ""
    answer: Answer | None = None
