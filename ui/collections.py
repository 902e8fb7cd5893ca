"""Collections the chat page can serve: index folders, each opened once and shared by every session.

A collection is one index folder. The page lists the folders under a collections root (the
parent of the default index) plus the one ``rag chat --index`` was started with, and can create
a new, empty one. Every collection is guarded by a read-write lock: answers read concurrently,
while an upload or a removal changes the in-memory FAISS and BM25 indexes alone.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> manager = CollectionManager(root, root / "default")
>>> manager.validate_new_name("../etc")
Traceback (most recent call last):
...
ValueError: a collection name may use letters, digits, spaces, '-', '_' and '.', up to 64 characters; got '../etc'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from index.embedding import Embedder, default_embedder_kind, load_embedder
from index.store import MANIFEST_NAME, IndexSettings, IndexStore
from rag.retrieval.retriever import Retriever

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
# One embedder per (model, kind) for the whole process: every collection and manager shares it.
_EMBEDDERS: dict[tuple[str, str], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()
UPLOADS_FOLDER = "uploads"
"""Sub-folder of an index folder where files uploaded through the page are kept."""


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
    """One open index folder, its retriever and its lock."""

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
                self.retriever.store = IndexStore.open(self.index_dir)
                store.close()
                self.generation = self.retriever.store.generation


class CollectionManager:
    """Opens collections on first use and keeps them, with one embedder per model and kind."""

    def __init__(self, root: Path, default_dir: Path) -> None:
        self.root = Path(root)
        self.default_dir = Path(default_dir).resolve()
        self._open: dict[Path, Collection] = {}
        self._guard = threading.Lock()

    def index_dirs(self) -> list[Path]:
        """The default collection first, then every index folder under the root, by name."""
        found = {self.default_dir}
        if self.root.is_dir():
            found.update(
                child.resolve()
                for child in self.root.iterdir()
                if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST_NAME).is_file()
            )
        found.update(self._open)
        return [self.default_dir] + sorted(found - {self.default_dir}, key=lambda p: p.name.lower())

    def choices(self) -> list[tuple[str, str]]:
        """(label, path) pairs for a dropdown; labels are folder names, made unique with the parent."""
        dirs = self.index_dirs()
        names = [d.name for d in dirs]
        return [(d.name if names.count(d.name) == 1 else f"{d.name} ({d.parent})", str(d)) for d in dirs]

    def get(self, index_dir: str | Path | None = None) -> Collection:
        """The open collection for ``index_dir`` (the default when None), opening it on first use.

        Only folders from ``index_dirs()`` are served, so a request cannot open an arbitrary path.
        """
        wanted = Path(index_dir).resolve() if index_dir else self.default_dir
        with self._guard:
            if wanted in self._open:
                return self._open[wanted]
            if wanted not in self.index_dirs():
                raise ValueError(f"unknown collection: {wanted}")
            store = IndexStore.open(wanted)
            collection = Collection(wanted, Retriever(store, shared_embedder(store.settings.embedding_model, store.settings.embedder_kind)))
            collection.generation = store.generation
            self._open[wanted] = collection
            return collection

    def create(self, name: str) -> Collection:
        """Make a new empty collection ``name`` under the root, with the default collection's model."""
        name = self.validate_new_name(name)
        index_dir = (self.root / name).resolve()
        if index_dir.exists():
            raise ValueError(f"a folder named {name!r} already exists in {self.root}")
        template = self.get().retriever.store.settings
        settings = IndexSettings(
            embedding_model=template.embedding_model,
            dimension=template.dimension,
            chunker=template.chunker,
            embedder=template.embedder,
            precision=template.precision,
        )
        IndexStore.create(index_dir, settings).close()
        return self.get(index_dir)

    @staticmethod
    def validate_new_name(name: str) -> str:
        name = (name or "").strip()
        if not _NAME.fullmatch(name):
            raise ValueError(
                "a collection name may use letters, digits, spaces, '-', '_' and '.', up to 64 characters; "
                f"got {name!r}"
            )
        return name


def shared_embedder(model: str, kind: str | None = None) -> Embedder:
    """The process's embedder for ``model`` run by ``kind`` (default: the default embedder), loaded on first use."""
    key = (model, kind or default_embedder_kind())
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            embedder = load_embedder(*key)
            embedder.embed_query("warm up")  # load the model now, once, not in the first user's request
            _EMBEDDERS[key] = embedder
        return _EMBEDDERS[key]
