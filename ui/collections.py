"""Collections the chat page can serve: index folders, each opened once and shared by every session.

A collection is one index folder (``rag.collection.Collection``, guarded by a read-write lock). The
page lists the folders under a collections root (the parent of the default index) plus the one
``rag chat --index`` was started with, and can create a new, empty one.

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
from pathlib import Path

from index.store import MANIFEST_NAME, IndexSettings, IndexStore
from rag.collection import Collection, open_collection

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")


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
            collection = open_collection(wanted, warm_up=True)
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

