"""The JSON shapes the HTTP API and the MCP tools speak, as Pydantic models (they document and validate).

Each output model is built from the plain data types' ``to_dict()`` (``Passage``, ``Answer``) or
from ``DocumentInfo``/``AddResult``; a ``Citation`` (a plain dataclass) is used as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from index.store import DocumentInfo
from rag.service import DEFAULT_K, MAX_K, AddResult
from rag.types import Citation

Mode = Literal["hybrid", "dense", "bm25"]
MAX_SEARCH_K = 100


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# ---- what comes out ----------------------------------------------------------------------------


class PassageOut(BaseModel):
    """A retrieved passage: the chunk's text, where it comes from, and how it ranked."""

    rank: int
    score: float = Field(description="The retriever's score: cosine (dense), BM25, or the fused z-score (hybrid).")
    retriever: str
    document_id: str
    chunk_id: str
    source: str = Field(description="The file the passage comes from.")
    title: str
    page: int | None = Field(description="1-based page (PDF), or null.")
    heading: str = Field(description="The heading path above the passage, e.g. 'Install > On Linux'.")
    start: int = Field(description="Character offset of the passage in its document's text.")
    end: int
    text: str


class CitedAnswer(BaseModel):
    """An answer whose sentences end in [n] markers, with the citations they point to."""

    text: str
    abstained: bool = Field(description="True when the documents do not answer the question (nothing is cited).")
    citations: list[Citation] = Field(
        description="Each [marker]'s passage span: source, title, page, start, end, the quoted words, and "
        "whether the check found that they support the sentence."
    )
    unsupported_sentences: list[str] = Field(description="Sentences whose citation does not support them.")


class AnswerOut(CitedAnswer):
    """The answer, its citations, and the passages it was given."""

    passages: list[PassageOut]


class SearchResponse(BaseModel):
    query: str
    mode: Mode
    passages: list[PassageOut]


class DocumentOut(BaseModel):
    """A document in the index; its ``id`` is what search filters and removal take."""

    id: str
    source: str
    title: str
    chunks: int
    added_at: str = Field(description="When it was added, ISO 8601 in UTC.")

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentOut:
        added = datetime.fromtimestamp(info.added_at, tz=UTC).isoformat(timespec="seconds")
        return cls(id=info.id, source=info.source, title=info.title, chunks=info.chunk_count, added_at=added)


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class FileReportOut(BaseModel):
    file: str
    status: Literal["added", "updated", "unchanged", "skipped", "failed", "rejected"]
    reason: str = Field(description="Why the file was skipped, failed or rejected; empty otherwise.")
    document_id: str | None = Field(description="The document's id when it was indexed.")


class AddReportOut(BaseModel):
    """What adding files did: counts, a one-line summary (as ``rag add`` prints), and a report per file."""

    added: int
    updated: int
    unchanged: int
    removed: int
    chunks_embedded: int
    chunks_reused: int
    not_added: int
    seconds: float
    summary: str
    files: list[FileReportOut]

    @classmethod
    def of(cls, result: AddResult) -> AddReportOut:
        return cls.model_validate(result.to_dict())


class RemovedDocuments(BaseModel):
    removed: list[DocumentOut]
    not_found: list[str] = Field(description="Ids that were not in the index.")


# ---- what goes in ------------------------------------------------------------------------------


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="What to look for.")
    k: int = Field(10, ge=1, le=MAX_SEARCH_K, description="How many passages.")
    mode: Mode = "hybrid"
    sources: list[str] | None = Field(None, description="Only sources matching one of these globs, e.g. '*.pdf'.")
    document_ids: list[str] | None = Field(None, description="Only these documents.")
    per_document: bool = Field(False, description="Only the best passage of each document.")

    _query_not_blank = field_validator("query")(_not_blank)


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    history: list[Message] = Field(default_factory=list, description="Earlier turns, for follow-up questions.")
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description="Passages the answer is drawn from.")
    mode: Mode = "hybrid"
    stream: bool = Field(False, description="Stream the answer as server-sent events.")

    _question_not_blank = field_validator("question")(_not_blank)
