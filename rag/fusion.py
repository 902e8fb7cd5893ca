"""Fuse the ranked lists of the dense and BM25 retrievers into one ranking."""

from __future__ import annotations

from index.store import StoredChunk

RRF_K = 60


def fuse(
    dense: list[tuple[StoredChunk, float]], lexical: list[tuple[StoredChunk, float]]
) -> list[tuple[StoredChunk, float]]:
    """Reciprocal rank fusion: each list adds 1 / (RRF_K + rank) to a chunk's score."""
    scores: dict[int, float] = {}
    hits: dict[int, StoredChunk] = {}
    for ranking in (dense, lexical):
        for rank, (hit, _) in enumerate(ranking, start=1):
            hits[hit.row] = hit
            scores[hit.row] = scores.get(hit.row, 0.0) + 1.0 / (RRF_K + rank)
    order = sorted(scores, key=lambda row: scores[row], reverse=True)
    return [(hits[row], scores[row]) for row in order]
