"""The public retrieval API: build or open an index folder and search it.

>>> from rag import Retriever                                    # doctest: +SKIP
>>> retriever = Retriever.build(["docs/"], "my-index")             # doctest: +SKIP
>>> for passage in retriever.search("how do I add files?", k=3):  # doctest: +SKIP
...     print(passage.rank, round(passage.score, 3), passage.source, passage.page)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from index.embedding import Embedder
from index.ingest import AddReport, add_to_index
from index.store import IndexStore, StoredChunk
from rag.fusion import fuse
from rag.types import Passage

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")

CANDIDATES_PER_RETRIEVER = 100
"""How many hits each retriever contributes to fusion; measured enough for recall@100."""


class Retriever:
    """Searches one index folder with dense, BM25 or hybrid retrieval.

    Open it once and share it: the embedding model and the index are loaded in the constructor.
    """

    def __init__(self, store: IndexStore, embedder: Embedder | None = None) -> None:
        self.store = store
        self.embedder = embedder or Embedder(store.settings.embedding_model)

    @classmethod
    def open(cls, index_dir: str | Path) -> "Retriever":
        """Open an existing index folder. Raises ``IndexNotFoundError`` when there is none."""
        return cls(IndexStore.open(index_dir))

    @classmethod
    def build(
        cls,
        paths: Sequence[str | Path],
        index_dir: str | Path,
        *,
        model: str | None = None,
        show_progress: bool = False,
    ) -> "Retriever":
        """Add ``paths`` (files or folders) to ``index_dir``, creating it if needed, and open it."""
        embedder = Embedder(model) if model else None
        add_to_index(index_dir, paths, model=model, show_progress=show_progress, embedder=embedder)
        retriever = cls.open(index_dir)
        if embedder is not None:
            retriever.embedder = embedder
        return retriever

    @property
    def index_dir(self) -> Path:
        return self.store.index_dir

    def add(self, paths: Sequence[str | Path], *, prune: bool = False, show_progress: bool = False) -> AddReport:
        """Add or update files in this index; searches see them as soon as this returns."""
        self.store.close()
        report = add_to_index(self.index_dir, paths, prune=prune, show_progress=show_progress, embedder=self.embedder)
        self.store = IndexStore.open(self.index_dir)
        return report

    def delete(self, document_ids: Sequence[str]) -> int:
        """Remove documents by id; returns how many were in the index."""
        with self.store.writer_lock():
            removed = self.store.delete_documents(document_ids)
            self.store.save()
        return removed

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
        document_ids: Sequence[str] | None = None,
        per_document: bool = False,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first.

        ``sources`` keeps only documents whose source path matches one of the glob patterns;
        ``document_ids`` keeps only those documents. With ``per_document`` only the best chunk
        of each document is returned (what document-level evaluation needs).
        Raises ``ValueError`` for ``k < 1`` or an unknown ``mode``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {', '.join(SEARCH_MODES)}; got {mode!r}")
        if not query.strip():
            return []
        allowed_rows = self._allowed_rows(sources, document_ids)
        depth = max(k, CANDIDATES_PER_RETRIEVER) if per_document or mode == "hybrid" else k
        ranked = self._ranked(query, depth, mode, allowed_rows)
        if per_document:
            ranked = _best_per_document(ranked)
        return [
            Passage(chunk=hit.chunk, score=score, rank=rank, retriever=mode, source=hit.source, title=hit.title)
            for rank, (hit, score) in enumerate(ranked[:k], start=1)
        ]

    def _ranked(
        self, query: str, depth: int, mode: SearchMode, allowed_rows: set[int] | None
    ) -> list[tuple[StoredChunk, float]]:
        if mode == "bm25":
            return self.store.search_bm25(query, depth, allowed_rows)
        dense = self.store.search_dense(self.embedder.embed_query(query), depth, allowed_rows)
        if mode == "dense":
            return dense
        lexical = self.store.search_bm25(query, depth, allowed_rows)
        return fuse(dense, lexical)

    def _allowed_rows(self, sources: Sequence[str] | None, document_ids: Sequence[str] | None) -> set[int] | None:
        if sources is None and document_ids is None:
            return None
        chosen = set(document_ids) if document_ids is not None else None
        if sources is not None:
            matching = {
                doc_id
                for doc_id, source in self.store.document_sources().items()
                if any(fnmatch.fnmatch(source, pattern) for pattern in sources)
            }
            chosen = matching if chosen is None else chosen & matching
        return self.store.rows_for_documents(chosen or [])


def _best_per_document(ranked: list[tuple[StoredChunk, float]]) -> list[tuple[StoredChunk, float]]:
    seen: set[str] = set()
    best = []
    for hit, score in ranked:
        if hit.chunk.document_id not in seen:
            seen.add(hit.chunk.document_id)
            best.append((hit, score))
    return best
