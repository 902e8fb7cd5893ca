"""The index store as an interface, and how an ``--index`` argument chooses its implementation.

Two implementations pass one contract (``tests/index/test_store_contract.py``):

- :class:`index.store.IndexStore`, the local folder (``--index DIR``, the default);
- :class:`index.milvus_store.MilvusStore`, a Milvus collection: ``milvus:///abs/path/file.db`` for
  Milvus Lite (the engine in-process), ``milvus://host:19530/collection`` or ``https://host/collection``
  for a server or cluster, with the token from ``$RAG_MILVUS_TOKEN``.

The ingestor, the retriever, the collection of a server and the CLI talk to :class:`Store` alone.
A Milvus index also has a local *companion folder* (uploads, the chat page's conversations and
feedback) holding ``milvus.json``, which names the Milvus location: opening that folder opens the
Milvus index, so code that keeps an index as a folder path (the chat page) works on both.
Nothing here imports pymilvus: only opening a Milvus location does.

>>> parse_location("milvus:///data/rag/corpus.db")
MilvusLocation(uri='/data/rag/corpus.db', collection='rag', token='')
>>> parse_location("milvus://db.example.org:19530/papers").uri
'http://db.example.org:19530'
>>> parse_location("my-index")
PosixPath('my-index')
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlparse

from index.manifest import (
    MANIFEST_NAME,
    DocumentInfo,
    IndexNotFoundError,
    IndexSettings,
    IndexStatus,
    IndexStoreError,
    StoredChunk,
)
from index.types import Chunk, Document

if TYPE_CHECKING:
    import numpy as np

    from index.milvus_store import MilvusStore

TOKEN_ENV = "RAG_MILVUS_TOKEN"
"""Environment variable holding the token (or ``user:password``) of a Milvus server."""
POINTER_NAME = "milvus.json"
"""The file in a Milvus index's companion folder that names its Milvus location."""
DEFAULT_COLLECTION = "rag"
COMPANION_SUFFIX = ".rag"
_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_REMOTE_SCHEMES = ("milvus", "http", "https")



@runtime_checkable
class Store(Protocol):
    """What the ingestor, the retriever, the servers and the CLI need of an index store.

    Chunks are addressed by integer *rows* (FAISS ids in the folder, primary keys in Milvus); a
    search returns ``(row, score)`` pairs, best first, and ``resolve`` reads the chunks of rows.
    Both implementations satisfy it (``isinstance(store, Store)``), and both pass the contract tests.
    """

    settings: IndexSettings

    @property
    def index_dir(self) -> Path:
        """A local folder for what sits beside the index: uploads, conversations, feedback."""

    @property
    def location(self) -> str:
        """What ``--index`` named: the folder, or the Milvus URI (used in messages and to reopen the store)."""

    @property
    def generation(self) -> int:
        """A counter that moves when another process changed the index (then the view is reloaded)."""

    @property
    def vector_index_kind(self) -> str: ...

    @property
    def updated_at(self) -> float | None: ...

    def close(self) -> None: ...

    def writer_lock(self) -> AbstractContextManager[None]:
        """Held around every write; raises ``IndexStoreError`` when another writer holds the index."""

    def save(self) -> None:
        """Make the written state durable and searchable (derived files, index types by size)."""

    def set_vector_index(self, setting: str) -> bool: ...

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""

    def status(self) -> IndexStatus: ...

    def document_hashes(self) -> dict[str, str]: ...

    def document_rows(self) -> Iterator[tuple[str, str, str]]:
        """``(id, sha256, source)`` of every document."""

    def document_sources(self) -> dict[str, str]: ...

    def documents(self) -> list[DocumentInfo]:
        """Every document with its chunk count, ordered by source."""

    def get_document(self, document_id: str) -> Document | None: ...

    def document_chunks(self, document_id: str) -> tuple[list[Chunk], np.ndarray]:
        """A document's chunks in order, with their stored vectors (one row each)."""

    def added_folders(self) -> list[str]: ...

    def record_added_folders(self, paths: Iterable[str | Path]) -> None: ...

    def vectors_by_text(self, document_id: str) -> dict[str, np.ndarray]: ...

    def write_documents(self, batch: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]]) -> None:
        """Insert or replace documents with their chunks and vectors."""

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove documents and their chunks; returns how many existed."""

    def rows_for_documents(self, document_ids: Iterable[str]) -> set[int]: ...

    def dense_hits(self, query_vector: np.ndarray, k: int, allowed_rows: set[int] | None = None) -> list[tuple[int, float]]: ...

    def bm25_hits(self, query: str, k: int, allowed_rows: set[int] | None = None) -> list[tuple[int, float]]: ...

    def search_dense(
        self, query_vector: np.ndarray, k: int, allowed_rows: set[int] | None = None
    ) -> list[tuple[StoredChunk, float]]: ...

    def search_bm25(self, query: str, k: int, allowed_rows: set[int] | None = None) -> list[tuple[StoredChunk, float]]: ...

    def get_chunks(self, rows: Sequence[int]) -> dict[int, StoredChunk]: ...

    def document_ids(self, rows: Sequence[int]) -> dict[int, str]: ...

    def resolve(self, hits: list[tuple[int, float]]) -> list[tuple[StoredChunk, float]]: ...

    def term_document_frequencies(self, stems: Sequence[str]) -> tuple[int, list[int]]: ...


@dataclass(frozen=True)
class MilvusLocation:
    """A Milvus collection: ``uri`` is a Milvus Lite ``.db`` path or a server address."""

    uri: str
    collection: str = DEFAULT_COLLECTION
    token: str = ""

    def __repr__(self) -> str:  # the token stays out of logs and messages
        return f"MilvusLocation(uri={self.uri!r}, collection={self.collection!r}, token={'***' if self.token else ''!r})"

    @property
    def is_lite(self) -> bool:
        return self.uri.endswith(".db")

    @property
    def display(self) -> str:
        """The location as a user writes it (no token)."""
        if self.is_lite:
            suffix = f"#{self.collection}" if self.collection != DEFAULT_COLLECTION else ""
            return f"milvus://{self.uri}{suffix}"
        return f"{self.uri}/{self.collection}"

    @property
    def companion_dir(self) -> Path:
        """The local folder beside the index: next to a Lite file, or under the user's data folder for a server."""
        if self.is_lite:
            name = Path(self.uri).name + (f".{self.collection}" if self.collection != DEFAULT_COLLECTION else "")
            return Path(self.uri).with_name(name + COMPANION_SUFFIX)
        data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        address = urlparse(self.uri)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{address.hostname}_{address.port or ''}_{self.collection}")
        return data_home / "rag-assistant" / "milvus" / slug

    def to_json(self) -> dict[str, str]:
        return {"uri": self.uri, "collection": self.collection}


IndexLocation = str | Path | MilvusLocation
"""What ``--index`` takes: a folder path, or a Milvus URI (or one already parsed)."""


def is_milvus_location(value: IndexLocation) -> bool:
    """Whether ``value`` names a Milvus index (a URI, or a companion folder holding ``milvus.json``)."""
    return isinstance(parse_location(value), MilvusLocation)


def parse_location(value: IndexLocation) -> Path | MilvusLocation:
    """The local folder or the Milvus collection an ``--index`` argument names.

    ``milvus:///abs/path/file.db`` is Milvus Lite (collection ``rag``, or ``#name``);
    ``milvus://host:port/collection``, ``http(s)://host:port/collection`` a server (port 19530 by
    default for ``milvus://``). A folder holding ``milvus.json`` is the companion folder of a Milvus
    index and names it. Raises ``IndexStoreError`` for a malformed URI.
    """
    if isinstance(value, MilvusLocation):
        return value
    text = str(value)
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme not in _REMOTE_SCHEMES:
        path = Path(value).expanduser()
        pointer = path / POINTER_NAME
        if pointer.is_file():
            data = json.loads(pointer.read_text())
            return MilvusLocation(data["uri"], data.get("collection", DEFAULT_COLLECTION), os.environ.get(TOKEN_ENV, ""))
        return path
    token = os.environ.get(TOKEN_ENV, "")
    parsed = urlparse(text)
    collection = DEFAULT_COLLECTION
    if scheme == "milvus" and not parsed.netloc:
        db_path, _, fragment = text[len("milvus://") :].partition("#")
        if not db_path.startswith("/") or not db_path.endswith(".db"):
            raise IndexStoreError(
                f"{text}: a Milvus Lite index is milvus:///absolute/path/file.db (three slashes, a .db file)"
            )
        return MilvusLocation(str(Path(db_path)), _collection_name(fragment or collection, text), "")
    path = parsed.path.strip("/")
    if path.endswith(".db"):
        raise IndexStoreError(
            f"{text}: a Milvus Lite index is milvus:///absolute/path/file.db (three slashes, an absolute path)"
        )
    if "/" in path:
        raise IndexStoreError(f"{text}: name one collection after the address, as in milvus://host:19530/collection")
    if path:
        collection = _collection_name(path, text)
    if not parsed.hostname:
        raise IndexStoreError(f"{text}: no host; a Milvus server is milvus://host:19530/collection")
    if scheme == "milvus":
        uri = f"http://{parsed.hostname}:{parsed.port or 19530}"
    else:
        uri = f"{scheme}://{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return MilvusLocation(uri, collection, token)


def _collection_name(name: str, text: str) -> str:
    if not _COLLECTION_NAME.fullmatch(name):
        raise IndexStoreError(f"{text}: a Milvus collection name is letters, digits and '_', starting with a letter; got {name!r}")
    return name


def store_exists(location: IndexLocation) -> bool:
    """Whether ``location`` holds an index (for Milvus this connects to it)."""
    parsed = parse_location(location)
    if isinstance(parsed, Path):
        return (parsed / MANIFEST_NAME).is_file()
    return _milvus_store_class().exists(parsed)


def open_store(location: IndexLocation, *, for_rebuild: bool = False) -> Store:
    """Open the index ``location`` names. Raises ``IndexNotFoundError`` when there is none."""
    parsed = parse_location(location)
    if isinstance(parsed, Path):
        from index.store import IndexStore

        return IndexStore.open(parsed, for_rebuild=for_rebuild)
    return _milvus_store_class().open(parsed)


def create_store(location: IndexLocation, settings: IndexSettings) -> Store:
    """Make a new empty index at ``location``; raises ``IndexStoreError`` when one exists."""
    parsed = parse_location(location)
    if isinstance(parsed, Path):
        from index.store import IndexStore

        return IndexStore.create(parsed, settings)
    return _milvus_store_class().create(parsed, settings)


def read_store_status(location: IndexLocation) -> IndexStatus:
    """What ``rag status`` shows; for a folder from the manifest and SQLite alone (no vectors loaded)."""
    parsed = parse_location(location)
    if isinstance(parsed, Path):
        from index.manifest import read_status

        return read_status(parsed)
    store = _milvus_store_class().open(parsed)
    try:
        return store.status()
    finally:
        store.close()


def read_store_settings(location: IndexLocation) -> IndexSettings:
    """The settings the index at ``location`` was built with (``IndexNotFoundError`` if none)."""
    parsed = parse_location(location)
    if isinstance(parsed, Path):
        from index.manifest import read_settings

        return read_settings(parsed)
    store = _milvus_store_class().open(parsed)
    try:
        return store.settings
    finally:
        store.close()


def copy_store(source: Store, target: Store, batch_documents: int = 64) -> int:
    """Copy every document, chunk and stored vector of ``source`` into ``target`` (nothing re-embedded).

    Used to load an existing folder index into Milvus (the evaluation suites do, to compare the two
    backends on the very same vectors). Returns the number of documents copied.
    """
    batch: list[tuple[Document, Sequence[Chunk], np.ndarray]] = []
    copied = 0
    for info in source.documents():
        document = source.get_document(info.id)
        if document is None:
            continue
        chunks, vectors = source.document_chunks(info.id)
        batch.append((document, chunks, vectors))
        if len(batch) >= batch_documents:
            target.write_documents(batch)
            copied += len(batch)
            batch = []
    target.write_documents(batch)
    target.record_added_folders(source.added_folders())
    target.save()
    return copied + len(batch)


def row_for_chunk(chunk_id: str) -> int:
    """A chunk's row in Milvus: the first 63 bits of sha256 of its id (stable, so an unchanged chunk keeps its row).

    >>> row_for_chunk("a"), row_for_chunk("a") == row_for_chunk("a")
    (7299139317422481125, True)
    """
    return int.from_bytes(hashlib.sha256(chunk_id.encode()).digest()[:8], "big") >> 1


def _milvus_store_class() -> type[MilvusStore]:
    """The Milvus store class, with a clear message when the optional dependencies are missing."""
    try:
        import pymilvus  # noqa: F401
    except ImportError:
        raise IndexStoreError(
            'a milvus:// index needs pymilvus and milvus-lite: pip install "rag-assistant[milvus]" '
            '(from a checkout: pip install -e ".[milvus]")'
        ) from None
    from index.milvus_store import MilvusStore

    return MilvusStore


__all__ = [
    "POINTER_NAME",
    "TOKEN_ENV",
    "IndexLocation",
    "IndexNotFoundError",
    "MilvusLocation",
    "Store",
    "copy_store",
    "create_store",
    "is_milvus_location",
    "open_store",
    "parse_location",
    "read_store_settings",
    "read_store_status",
    "row_for_chunk",
    "store_exists",
]
