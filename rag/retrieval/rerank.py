"""Reranking the fused passages with a cross-encoder the user supplies (none ships: none is packaged on PyPI)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # imported lazily: only a configured reranker needs sentence-transformers' CrossEncoder
    from sentence_transformers import CrossEncoder

    from index.store import StoredChunk

__all__ = ["CrossEncoderReranker", "Reranker", "reranked"]


class Reranker(Protocol):
    """Anything that scores (query, passage text) pairs, higher is better, and says how deep it reranks."""

    depth: int

    def score(self, query: str, texts: Sequence[str]) -> list[float]: ...


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder from a local folder, reranking the top ``depth`` passages.

    No cross-encoder ships with the project (none is packaged on PyPI), so reranking is off unless
    one is given; the model loads on first use::

        reranker = CrossEncoderReranker("models/ms-marco-MiniLM-L-6-v2")
        retriever = Retriever.open("my-index", reranker=reranker)
        retriever.search("question", k=5)                 # hybrid, then reranked
        retriever.search("question", k=5, rerank=False)   # the same search without it

    Raises ``ValueError`` when the folder does not exist or ``depth``/``batch_size`` is below 1.
    """

    def __init__(self, model_path: str | Path, *, depth: int = 50, batch_size: int = 16) -> None:
        self.model_path = Path(model_path).expanduser()
        if not self.model_path.is_dir():
            raise ValueError(f"reranker model folder not found: {self.model_path}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.depth = depth
        self.batch_size = batch_size

    @cached_property
    def model(self) -> CrossEncoder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        return CrossEncoder(str(self.model_path))

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text (the model's own scale), in the order given."""
        if not texts:
            return []
        scores = self.model.predict([(query, text) for text in texts], batch_size=self.batch_size)
        return [float(score) for score in scores]


def reranked(
    reranker: Reranker, query: str, ranked: list[tuple[StoredChunk, float]]
) -> list[tuple[StoredChunk, float]]:
    """``ranked`` re-scored by ``reranker``, best first (a stable sort: ties keep the retrieval order)."""
    scores = reranker.score(query, [hit.chunk.text for hit, _ in ranked])
    return sorted(zip((hit for hit, _ in ranked), scores), key=lambda pair: pair[1], reverse=True)
