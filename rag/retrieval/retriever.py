"""The public retrieval API: build or open an index folder and search it.

>>> from rag import Retriever                                    # doctest: +SKIP
>>> retriever = Retriever.build(["docs/"], "my-index")             # doctest: +SKIP
>>> for passage in retriever.search("how do I add files?", k=3):  # doctest: +SKIP
...     print(passage.rank, round(passage.score, 3), passage.source, passage.page)
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import faiss
import numpy as np

from index.embedding import Embedder, load_embedder
from index.ingest import AddReport, add_to_index
from index.store import StoredChunk
from index.stores import IndexLocation, Store, open_store
from rag.retrieval.fusion import DEFAULT_FUSION, FUSION_METHODS, FusionMethod, fuse
from rag.retrieval.rerank import Reranker, reranked
from rag.types import Passage

if TYPE_CHECKING:
    from rag.retrieval.langchain import RagLangChainRetriever

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")

CANDIDATES_PER_RETRIEVER = 100
"""How many hits each retriever contributes to fusion at least: the pool its scores are
normalised over. 50 to 300 all gave the same SQuAD MRR@10 within 0.004 (see rag/retrieval/fusion.py)."""


class Retriever:
    """Searches one index (a folder or a Milvus collection, see ``index.stores``) with dense, BM25 or hybrid retrieval, optionally reranked.

    Open it once and share it: the index is loaded in the constructor, the embedding model on first use.
    The embedder is the one the index was built with unless another is given: an index embedded
    with ``torch`` can be searched with ``onnx-int8`` query vectors and the other way round (the
    README gives the measured cost), but ``add`` refuses to mix two embedders' vectors in one index.
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder | None = None,
        *,
        reranker: Reranker | None = None,
        fusion: FusionMethod = DEFAULT_FUSION,
    ) -> None:
        if fusion not in FUSION_METHODS:
            raise ValueError(f"fusion must be one of {', '.join(FUSION_METHODS)}; got {fusion!r}")
        self.store = store
        self.embedder = embedder or load_embedder(store.settings.embedding_model, store.settings.embedder_kind)
        self.reranker = reranker
        self.fusion: FusionMethod = fusion

    @cached_property
    def _lexical_pool(self) -> ThreadPoolExecutor:
        """Threads that run a hybrid search's BM25 while the calling thread embeds the query (see ``_ranked``)."""
        return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="bm25")

    @classmethod
    def open(
        cls,
        index_dir: IndexLocation,
        *,
        reranker: Reranker | None = None,
        fusion: FusionMethod = DEFAULT_FUSION,
        embedder_kind: str | None = None,
    ) -> Retriever:
        """Open an existing index: a folder, or a Milvus URI (``milvus:///abs/file.db``, ``milvus://host:19530/name``).
        Raises ``IndexNotFoundError`` when there is none.

        ``embedder_kind`` (``onnx-int8``, ``onnx-fp32``, ``torch``) embeds queries with another embedder
        of the index's model than the one that built it.
        """
        store = open_store(index_dir)
        embedder = load_embedder(store.settings.embedding_model, embedder_kind) if embedder_kind else None
        return cls(store, embedder, reranker=reranker, fusion=fusion)

    @classmethod
    def build(
        cls,
        paths: Sequence[str | Path],
        index_dir: IndexLocation,
        *,
        model: str | None = None,
        embedder_kind: str | None = None,
        show_progress: bool = False,
    ) -> Retriever:
        """Add ``paths`` (files or folders) to ``index_dir``, creating it if needed, and open it.

        ``model`` and ``embedder_kind`` apply to a new index (an existing one keeps its own).
        """
        add_to_index(index_dir, paths, model=model, embedder_kind=embedder_kind, show_progress=show_progress)
        return cls.open(index_dir)

    @property
    def index_dir(self) -> Path:
        """The index folder (for a Milvus index, its local companion folder: uploads, conversations)."""
        return self.store.index_dir

    @property
    def location(self) -> str:
        """The index as ``--index`` names it: the folder, or the Milvus URI."""
        return self.store.location

    def add(self, paths: Sequence[str | Path], *, prune: bool = False, show_progress: bool = False) -> AddReport:
        """Add or update files in this index; searches see them as soon as this returns."""
        location = self.location
        self.store.close()
        report = add_to_index(location, paths, prune=prune, show_progress=show_progress, embedder=self.embedder)
        self.store = open_store(location)
        return report

    def delete(self, document_ids: Sequence[str]) -> int:
        """Remove documents by id; returns how many were in the index."""
        with self.store.writer_lock():
            removed = self.store.delete_documents(document_ids)
            self.store.save()
        return removed

    def as_langchain(self, k: int = 4, **search_options: object) -> RagLangChainRetriever:
        """This retriever as a LangChain ``BaseRetriever`` returning ``k`` Documents a query.

        ``search_options`` go to ``search`` (mode, sources, document_ids, per_document); ``k`` can
        be overridden per call with ``invoke(query, k=3)``. Documents carry document_id, chunk_id,
        source, title, page and score in their metadata.
        """
        from rag.retrieval.langchain import to_langchain_retriever  # langchain_core loads only when asked for

        return to_langchain_retriever(self, k=k, **search_options)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: SearchMode = "hybrid",
        sources: Sequence[str] | None = None,
        document_ids: Sequence[str] | None = None,
        per_document: bool = False,
        rerank: bool = True,
    ) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first.

        ``sources`` keeps only documents whose source path matches one of the glob patterns;
        ``document_ids`` keeps only those documents. With ``per_document`` only the best chunk
        of each document is returned (what document-level evaluation needs). When the retriever
        has a reranker, it re-scores the top ``max(k, reranker.depth)`` passages unless
        ``rerank=False``; the passages' ``retriever`` then reads e.g. ``"hybrid+rerank"``.
        Raises ``ValueError`` for ``k < 1`` or an unknown ``mode``.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if mode not in SEARCH_MODES:
            raise ValueError(f"mode must be one of {', '.join(SEARCH_MODES)}; got {mode!r}")
        if not query.strip():
            return []
        allowed_rows = self._allowed_rows(sources, document_ids)
        reranker = self.reranker if rerank else None
        wanted = max(k, reranker.depth) if reranker is not None else k
        ranked = self._ranked(query, wanted, mode, allowed_rows, per_document)
        label = mode
        if reranker is not None:
            ranked = reranked(reranker, query, ranked[:wanted])
            label = f"{mode}+rerank"
        return [
            Passage(chunk=hit.chunk, score=score, rank=rank, retriever=label, source=hit.source, title=hit.title)
            for rank, (hit, score) in enumerate(ranked[:k], start=1)
        ]

    def _ranked(
        self, query: str, wanted: int, mode: SearchMode, allowed_rows: set[int] | None, per_document: bool
    ) -> list[tuple[StoredChunk, float]]:
        """The best ``wanted`` results (fewer when the index has fewer): chunks, or documents at their best chunk.

        Candidates are ranked and fused as row ids; only the rows returned are read from SQLite.
        """
        # Fusion needs a pool of candidates from each retriever to normalise over, whatever k is.
        depth = max(wanted, CANDIDATES_PER_RETRIEVER) if mode == "hybrid" or per_document else wanted
        fetched: dict[str, tuple[int, list[tuple[int, float]]]] = {}
        lexical: Future[list[tuple[int, float]]] | None = None
        if mode == "hybrid":
            # BM25 runs on a second thread while this one embeds the query: onnxruntime releases the GIL,
            # so on an idle second core the BM25 time (about a millisecond on SciFact) leaves the wall time.
            asked = 2 * depth if per_document else depth  # as _candidates' first round asks
            lexical = self._lexical_pool.submit(self.store.bm25_hits, query, asked, allowed_rows)
        with _one_thread():
            vector = self.embedder.embed_query(query) if mode != "bm25" else None
        if lexical is not None:
            fetched["bm25"] = (asked, lexical.result())
        while True:
            ranked, exhausted = self._candidates(query, vector, depth, mode, allowed_rows, fetched, per_document)
            if per_document:
                ranked = _best_per_document(ranked, self.store.document_ids([row for row, _ in ranked]))
            # A document can fill several of the top chunks: look deeper until k documents are found.
            if len(ranked) >= wanted or exhausted:
                return self.store.resolve(ranked[:wanted])
            depth *= 2

    def _candidates(
        self,
        query: str,
        vector: np.ndarray | None,
        depth: int,
        mode: SearchMode,
        allowed_rows: set[int] | None,
        fetched: dict[str, tuple[int, list[tuple[int, float]]]],
        deeper_likely: bool,
    ) -> tuple[list[tuple[int, float]], bool]:
        """The ranked rows of ``mode`` from ``depth`` candidates per retriever, and whether the index ran out.

        ``fetched`` keeps each retriever's hits across the rounds of one search. When ``deeper_likely`` (a
        per-document search: about one in six SciFact queries needs a second round at twice the depth), a
        retriever whose best ``depth`` hits are the first ones of its best ``2 * depth`` (BM25, ranked by
        score then row; exact flat search) is asked for twice the depth at once: it costs it little more,
        and the second round then searches nothing again. IVF probes more lists for a deeper search, so its
        deeper hits are not an extension of its shallower ones: it is asked for what each round needs.
        """

        def hits(name: str, search: Callable[[int], list[tuple[int, float]]], extends: bool) -> list[tuple[int, float]]:
            asked, found = fetched.get(name, (0, []))
            if asked < depth:
                asked = 2 * depth if deeper_likely and extends else depth
                found = search(asked)
                fetched[name] = (asked, found)
            return found[:depth]

        lexical = hits("bm25", lambda n: self.store.bm25_hits(query, n, allowed_rows), True) if mode != "dense" else []
        with _one_thread():
            exact = str(getattr(self.store, "vector_index_kind", "")).startswith("flat")  # "flat (exact inner product)"
            dense = hits("dense", lambda n: self.store.dense_hits(vector, n, allowed_rows), exact) if vector is not None else []
        exhausted = len(lexical) < depth and len(dense) < depth
        if mode == "bm25":
            return lexical, exhausted
        if mode == "dense":
            return dense, exhausted
        return fuse(dense, lexical, self.fusion), exhausted

    def _allowed_rows(self, sources: Sequence[str] | None, document_ids: Sequence[str] | None) -> set[int] | None:
        if sources is None and document_ids is None:
            return None
        chosen = set(document_ids) if document_ids is not None else None
        if sources is not None:
            matching = {
                doc_id
                for doc_id, source in self.store.document_sources().items()
                if any(source_matches(source, pattern) for pattern in sources)
            }
            chosen = matching if chosen is None else chosen & matching
        return self.store.rows_for_documents(chosen or [])


def source_matches(source: str, pattern: str) -> bool:
    """Whether a document's ``source`` path matches a glob ``pattern``.

    A pattern starting with ``/`` matches the whole absolute path; any other pattern matches the
    end of it, relative to any folder, so ``python-tutorial/*`` finds the files of the folder that
    was added as ``corpus/python-tutorial`` (it found nothing when it had to match the absolute path).
    ``*`` also crosses ``/``, as in ``fnmatch``.

    >>> source_matches("/data/corpus/python-tutorial/classes.html", "python-tutorial/*")
    True
    >>> source_matches("/data/corpus/python-tutorial/classes.html", "*.md")
    False
    >>> source_matches("/data/notes/plan.md", "/data/*")
    True
    """
    if pattern.startswith("/"):
        return fnmatch.fnmatchcase(source, pattern)
    return fnmatch.fnmatchcase(source, pattern) or fnmatch.fnmatchcase(source, f"*/{pattern}")


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run one query's embedding and FAISS search on the calling thread alone, then restore the settings.

    Why: a single short query gives two threads too little work to share, and their OpenMP
    workers spin-wait for cores other processes hold. Measured on the 2-core VM under load,
    SciFact, 80 queries: embedding p50/p95 95/666 ms with torch's 2 threads vs 14/25 ms with 1;
    flat FAISS search of 200 of 16k vectors 22/25 ms vs 3/8 ms. Both libraries keep the thread
    count per calling thread (OpenMP), so a search in one thread does not slow an ingest in another.
    """
    torch = sys.modules.get("torch")  # only when the embedder has loaded it; BM25-only searches never do
    torch_threads = torch.get_num_threads() if torch is not None else None
    faiss_threads = faiss.omp_get_max_threads()
    if torch is not None:
        torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(faiss_threads)
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)


def _best_per_document(ranked: list[tuple[int, float]], document_of: dict[int, str]) -> list[tuple[int, float]]:
    seen: set[str] = set()
    best = []
    for row, score in ranked:
        document_id = document_of.get(row)
        if document_id is not None and document_id not in seen:
            seen.add(document_id)
            best.append((row, score))
    return best
