"""An open index folder shared by the threads of a server: its retriever, a read-write lock, reloads.

The chat page, the HTTP API and the MCP server each keep their index open as a ``Collection``:
answers read concurrently, while an upload or a removal changes the in-memory FAISS and BM25
indexes alone, and a change written by another process (``rag add``) is picked up on the next read.

Usage (what ``rag serve`` does)::

    collection = open_collection("my-index", warm_up=True)
    with collection.reading() as retriever:
        passages = retriever.search("how are retries configured", k=5)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from index.embedding import Embedder, default_embedder_kind, load_embedder
from index.stores import IndexLocation, open_store, parse_location
from rag.retrieval.retriever import Retriever

UPLOADS_FOLDER = "uploads"
"""Sub-folder of an index folder where files uploaded through the page or the HTTP API are kept."""

# One embedder per (model, kind) for the whole process: every collection shares it.
_EMBEDDERS: dict[tuple[str, str], Embedder] = {}
_WARMED: set[tuple[str, str]] = set()
_EMBEDDERS_LOCK = threading.Lock()


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers so uploads are not starved.

    >>> lock = ReadWriteLock()
    >>> with lock.reading():
    ...     with lock.reading():  # readers share
    ...         pass
    >>> with lock.writing():
    ...     pass
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._condition:
            while self._writer or self._writers_waiting:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._condition.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._condition.notify_all()


@dataclass
class Collection:
    """One open index, its retriever and its lock. ``index_dir`` is its folder (for a Milvus index the
    local companion folder, which holds uploads and conversations, and opens the Milvus index)."""

    index_dir: Path
    retriever: Retriever
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    generation: int = 0

    @property
    def name(self) -> str:
        return self.index_dir.name

    @property
    def uploads_dir(self) -> Path:
        return self.index_dir / UPLOADS_FOLDER

    @contextmanager
    def reading(self) -> Iterator[Retriever]:
        """Hold the read lock, after reloading the index if another process (``rag add``) changed it."""
        self._reload_if_changed()
        with self.lock.reading():
            yield self.retriever

    @contextmanager
    def writing(self) -> Iterator[Retriever]:
        """Hold the write lock; the generation seen afterwards is ours, so no reload follows."""
        with self.lock.writing():
            try:
                yield self.retriever
            finally:
                self.generation = self.retriever.store.generation

    def _reload_if_changed(self) -> None:
        if self.retriever.store.generation == self.generation:
            return
        with self.lock.writing():
            store = self.retriever.store
            if store.generation != self.generation:
                self.retriever.store = open_store(store.location)
                store.close()
                self.generation = self.retriever.store.generation


def open_collection(index_dir: IndexLocation, *, warm_up: bool = False, embedder_kind: str | None = None) -> Collection:
    """Open the index ``index_dir`` (a folder or a Milvus URI) with the process's shared embedder of its model.

    ``warm_up`` loads the model now (a server does, so its first visitor does not wait); a
    one-shot command leaves it to the first search that needs it (BM25 never does).
    ``embedder_kind`` (``onnx-int8``, ``onnx-fp32``, ``torch``) embeds queries with another embedder
    of the index's model than the one that built it. Raises ``IndexNotFoundError`` when the folder
    holds no index.
    """
    location = parse_location(index_dir)
    store = open_store(location.resolve() if isinstance(location, Path) else location)
    kind = embedder_kind or store.settings.embedder_kind
    collection = Collection(store.index_dir.resolve(), Retriever(store, shared_embedder(store.settings.embedding_model, kind, warm_up)))
    collection.generation = store.generation
    return collection


def shared_embedder(model: str, kind: str | None = None, warm_up: bool = True) -> Embedder:
    """The process's embedder for ``model`` run by ``kind`` (default: the default embedder), made on first use.

    With ``warm_up`` its weights are loaded now, once, not in the first user's request.
    """
    key = (model, kind or default_embedder_kind())
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = _EMBEDDERS[key] = load_embedder(*key)
        if warm_up and key not in _WARMED:
            embedder.embed_query("warm up")
            _WARMED.add(key)
        return embedder
