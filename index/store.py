"""The on-disk index: one folder holding a manifest, an SQLite store, a FAISS file and a BM25 file.

SQLite is the source of truth and the commit point: documents, chunks and their vectors are
written in one transaction per batch, so a process killed at any moment leaves the last
committed batch. The FAISS and BM25 files are derived data, saved atomically (temporary file,
then rename) and stamped with the store's generation; when a crash leaves them behind the
store, opening rebuilds them from SQLite without re-embedding anything. Nothing is pickled.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.bm25 import Bm25Index
from index.chunking import embedding_text
from index.manifest import (  # the manifest, schema, errors and status live there (no numpy); re-exported here
    FORMAT_VERSION,
    LOCK_NAME,
    MANIFEST_NAME,
    READABLE_FORMATS,
    REBUILDABLE_FORMATS,
    STORE_NAME,
    VECTORS_NAME,
    VECTORS_STAMP_NAME,
    DocumentInfo,
    IndexNotFoundError,
    IndexSettings,
    IndexStatus,
    IndexStoreError,
    SettingsMismatchError,
    StoredChunk,
    _connect,
    _counts,
    _read_manifest,
    _status,
    _updated_at,
    atomic_write_bytes,
    atomic_write_json,
    read_settings,
    read_status,
)
from index.structure import Block
from index.types import Chunk, Document, Section

if TYPE_CHECKING:
    from index.vectors import VectorIndex  # imports FAISS: `rag status` reads no vectors

BM25_TEXT_VERSION = 2  # 2: BM25 indexes embedding_text (heading or title + chunk); older files are rebuilt

__all__ = [  # what other modules import from here, including the names index.manifest defines
    "FORMAT_VERSION", "LOCK_NAME", "MANIFEST_NAME", "READABLE_FORMATS", "REBUILDABLE_FORMATS", "STORE_NAME",
    "VECTORS_NAME", "VECTORS_STAMP_NAME", "DocumentInfo", "IndexNotFoundError", "IndexSettings", "IndexStatus",
    "IndexStore", "IndexStoreError", "SettingsMismatchError", "StoredChunk", "atomic_write_bytes",
    "atomic_write_json", "read_settings", "read_status",
]

log = logging.getLogger(__name__)


def _vector_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


class IndexStore:
    """One collection on disk: documents, chunks, vectors (FAISS) and BM25 postings.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "demo"
    >>> store = IndexStore.create(folder, IndexSettings(embedding_model="toy", dimension=2))
    >>> doc = Document(id="a", source="a.txt", title="A", text="hello world")
    >>> chunk = Chunk(id="c1", document_id="a", text="hello world", start=0, end=11)
    >>> store.write_documents([(doc, [chunk], np.array([[1.0, 0.0]], dtype=np.float32))])
    >>> [hit.chunk.text for hit, _ in store.search_dense(np.array([1.0, 0.0], dtype=np.float32), k=1)]
    ['hello world']
    """

    def __init__(self, index_dir: Path, settings: IndexSettings, connection: sqlite3.Connection):
        self.index_dir = index_dir
        self.settings = settings
        self._db = connection
        self._vectors = self._new_vector_index()
        self._bm25 = Bm25Index()
        self._dirty = False
        # The generation the in-memory FAISS and BM25 indexes were built from. Another process may
        # commit after this instance loaded them; a write must then reload first, or the derived
        # files it saves would be stamped current while lacking the other process's chunks.
        self._view_generation = 0
        self._memos: dict[str, _GenerationMemo] = {}  # see _remembered

    # ---- opening and creating -------------------------------------------------------------

    @classmethod
    def create(cls, index_dir: Path | str, settings: IndexSettings) -> IndexStore:
        """Make a new empty index in ``index_dir`` (created if needed; must hold no index yet)."""
        index_dir = Path(index_dir)
        if (index_dir / MANIFEST_NAME).exists():
            raise IndexStoreError(f"{index_dir}: an index already exists here")
        index_dir.mkdir(parents=True, exist_ok=True)
        store = cls(index_dir, settings, _connect(index_dir / STORE_NAME))
        store._write_manifest()
        store.save()
        return store

    @classmethod
    def open(cls, index_dir: Path | str, *, for_rebuild: bool = False) -> IndexStore:
        """Open an existing index; derived files left stale by a crash are rebuilt from SQLite.

        An index of an older format raises ``IndexStoreError`` saying how to rebuild it, unless
        ``for_rebuild`` (what ``rag add --rebuild`` does to read its documents back).
        """
        index_dir = Path(index_dir)
        manifest = _read_manifest(index_dir, for_rebuild=for_rebuild)
        store = cls(index_dir, IndexSettings.from_json(manifest["settings"]), _connect(index_dir / STORE_NAME))
        store._load_derived()
        return store

    @classmethod
    def open_or_create(cls, index_dir: Path | str, settings: IndexSettings) -> IndexStore:
        """Open the index in ``index_dir`` if there is one, else create it with ``settings``."""
        if (Path(index_dir) / MANIFEST_NAME).is_file():
            return cls.open(index_dir)
        return cls.create(index_dir, settings)

    def close(self) -> None:
        self._db.close()

    @property
    def location(self) -> str:
        """The folder, as ``--index`` names it (see ``index.stores.Store``)."""
        return str(self.index_dir)

    def _new_vector_index(self) -> VectorIndex:
        from index.vectors import VectorIndex, kind_for

        return VectorIndex.empty(self.settings.dimension, kind_for(self.settings.vector_index, 0))

    @property
    def generation(self) -> int:
        """Counter bumped by every committed write; stamps the derived files."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def _load_derived(self, save_if_rebuilt: bool = True) -> None:
        """Load the vector and BM25 files, or rebuild from SQLite whichever is not of the store's generation
        (and the vector index when it is not the kind its setting asks for)."""
        from index.vectors import VectorIndex, VectorIndexError, VectorIndexInfo

        with self._read_snapshot():
            generation = self.generation
            chunk_count = self.counts()[1]
        stamp_path = self.index_dir / VECTORS_STAMP_NAME
        stamp = json.loads(stamp_path.read_text()) if stamp_path.is_file() else {}
        vectors = None
        if stamp.get("generation") == generation and (self.index_dir / VECTORS_NAME).is_file():
            try:
                info = VectorIndexInfo.from_json(stamp.get("vector_index"))
                vectors = VectorIndex.open(self.index_dir / VECTORS_NAME, self.settings.dimension, info)
            except (VectorIndexError, RuntimeError) as error:  # FAISS raises RuntimeError for a damaged file
                log.warning("%s: cannot read %s (%s)", self.index_dir, VECTORS_NAME, error)
        try:
            bm25 = Bm25Index.open(self.index_dir)
        except (FileNotFoundError, ValueError) as error:  # missing, damaged, or an older format
            log.info("%s: %s", self.index_dir, error)
            bm25 = None
        bm25_current = stamp.get("bm25_generation") == generation and stamp.get("bm25_text") == BM25_TEXT_VERSION
        # A file of the right generation but with another number of chunks was saved from a stale
        # view by an older version (issue 10): it is rebuilt, not trusted.
        vectors_current = vectors is not None and len(vectors) == chunk_count
        bm25_current = bm25 is not None and bm25_current and len(bm25) == chunk_count
        if vectors_current:
            self._vectors = vectors
        if bm25_current:
            self._bm25 = bm25
        right_kind = vectors_current and not self._vectors.wants_rebuild(self.settings.vector_index, chunk_count)
        if right_kind and bm25_current:
            self._view_generation = generation
            return
        log.warning("%s: derived files are behind the store or its settings; rebuilding from SQLite", self.index_dir)
        with self._read_snapshot():
            now = self.generation
            moved = now != generation  # another process committed meanwhile: both must come from this snapshot
            if moved or not right_kind:
                self._rebuild_vectors()
            if moved or not bm25_current:
                self._rebuild_bm25()
        self._view_generation = now
        self._dirty = True
        if save_if_rebuilt and self._try_save():
            self._dirty = False

    @contextmanager
    def _read_snapshot(self) -> Iterator[None]:
        """One read transaction: every query inside sees the same committed state (WAL snapshot),
        so a generation read with the rows it numbers never mixes in another process's later commit."""
        if self._db.in_transaction:  # already inside one (this connection's own write)
            yield
            return
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.commit()

    def _rebuild_derived(self) -> None:
        """Rebuild FAISS and BM25 from SQLite, both from one snapshot, and note its generation."""
        with self._read_snapshot():
            generation = self.generation
            self._rebuild_vectors()
            self._rebuild_bm25()
        self._view_generation = generation

    def _sync_view(self) -> None:
        """Bring the in-memory derived indexes up to the store's generation (called holding the write lock)."""
        if self._view_generation == self.generation:
            return
        log.info("%s: another process changed the index; reloading before writing", self.index_dir)
        self._load_derived(save_if_rebuilt=False)

    def _rebuild_vectors(self) -> None:
        """Build the vector index from the vectors stored in SQLite (nothing is re-embedded)."""
        from index.vectors import TRAINING_POINTS_PER_LIST, VectorIndex, ivf_lists, kind_for

        count = int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
        kind = kind_for(self.settings.vector_index, count, self._vectors.kind)
        sample = None
        if kind == "ivf" and count:
            # A training sample spread over the whole store (every n-th row), read before the
            # vectors stream in batches, so the store's vectors are never all in memory at once.
            step = max(1, count // (ivf_lists(count) * TRAINING_POINTS_PER_LIST))
            sample = np.vstack(
                [
                    np.frombuffer(blob, dtype=np.float32)
                    for (blob,) in self._db.execute(
                        "SELECT vector FROM (SELECT vector, ROW_NUMBER() OVER (ORDER BY rowid) AS n FROM chunks)"
                        " WHERE n % ? = 0",
                        (step,),
                    )
                ]
            )
        self._vectors = VectorIndex.build(self.settings.dimension, kind, count, self._stored_vectors(), sample)

    def _stored_vectors(self, batch_size: int = 16384) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rows, vectors = [], []
        for row, blob in self._db.execute("SELECT rowid, vector FROM chunks ORDER BY rowid"):
            rows.append(row)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
            if len(rows) >= batch_size:
                yield np.array(rows, dtype=np.int64), np.vstack(vectors)
                rows, vectors = [], []
        if rows:
            yield np.array(rows, dtype=np.int64), np.vstack(vectors)

    def _rebuild_bm25(self) -> None:
        self._bm25 = Bm25Index.build(self._stored_texts())

    def _stored_texts(self, batch_size: int = 8192) -> Iterator[tuple[list[int], list[str]]]:
        query = (
            "SELECT c.rowid, c.text, c.heading, d.title FROM chunks c JOIN documents d ON d.id = c.document_id"
            " ORDER BY c.rowid"
        )
        rows, texts = [], []
        for row, text, heading, title in self._db.execute(query):
            rows.append(row)
            texts.append(embedding_text(Chunk("", "", text, 0, 0, heading=heading), title))
            if len(rows) >= batch_size:
                yield rows, texts
                rows, texts = [], []
        if rows:
            yield rows, texts

    # ---- writing ---------------------------------------------------------------------------

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Hold the folder's write lock: one writer at a time, readers are never blocked.

        The lock belongs to this instance's view of the index: when another process committed
        since this instance loaded its FAISS and BM25 indexes, they are reloaded here, before
        anything is written, so nothing saved under the lock lacks the other process's chunks.
        """
        with self._folder_lock():
            self._sync_view()
            yield

    @contextmanager
    def _folder_lock(self) -> Iterator[None]:
        with open(self.index_dir / LOCK_NAME, "w") as lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexStoreError(
                    f"{self.index_dir}: another process is writing to this index; wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def write_documents(self, batch: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]]) -> None:
        """Insert or replace documents with their chunks and vectors, in one transaction."""
        if not batch:
            return
        removed_rows: list[int] = []
        added_rows: list[int] = []
        added_vectors: list[np.ndarray] = []
        added_texts: list[str] = []
        now = time.time()
        with self._db:  # one transaction: all of the batch or none of it
            for document, chunks, vectors in batch:
                if len(chunks) != len(vectors):
                    raise ValueError(f"{document.source}: {len(chunks)} chunks but {len(vectors)} vectors")
                removed_rows += self._delete_document_rows(document.id)
                self._db.execute(
                    "INSERT INTO documents (id, source, title, sha256, modified, metadata, text, page_starts,"
                    " sections, added_at, blocks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        document.id,
                        document.source,
                        document.title,
                        str(document.metadata.get("sha256", "")),
                        document.metadata.get("modified"),
                        json.dumps(document.metadata, default=str),
                        document.text,
                        json.dumps(document.page_starts),
                        json.dumps([[s.start, s.heading] for s in document.sections]),
                        now,
                        json.dumps([[b.start, b.end, b.kind, b.level] for b in document.blocks]),
                    ),
                )
                for chunk, vector in zip(chunks, vectors):
                    cursor = self._db.execute(
                        "INSERT INTO chunks (id, document_id, text, start, end, page, heading, token_count,"
                        " vector, blocks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            chunk.id,
                            chunk.document_id,
                            chunk.text,
                            chunk.start,
                            chunk.end,
                            chunk.page,
                            chunk.heading,
                            chunk.token_count,
                            _vector_blob(vector),
                            json.dumps(chunk.blocks),
                        ),
                    )
                    added_rows.append(int(cursor.lastrowid))
                    added_vectors.append(vector)
                    added_texts.append(embedding_text(chunk, document.title))
            generation = self._bump_generation()
        self._apply_to_derived(removed_rows, added_rows, added_vectors, added_texts, generation)

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        """Remove documents and their chunks; returns how many documents existed. Unknown ids are ignored."""
        removed_rows: list[int] = []
        count = 0
        with self._db:
            for document_id in document_ids:
                exists = self._db.execute("SELECT 1 FROM documents WHERE id = ?", (document_id,)).fetchone()
                if exists:
                    count += 1
                    removed_rows += self._delete_document_rows(document_id)
            generation = self._bump_generation() if count else None
        self._apply_to_derived(removed_rows, [], [], [], generation)
        return count

    def _delete_document_rows(self, document_id: str) -> list[int]:
        rows = [r for (r,) in self._db.execute("SELECT rowid FROM chunks WHERE document_id = ?", (document_id,))]
        self._db.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        self._db.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return rows

    def _bump_generation(self) -> int:
        """Count one more committed write (inside the write's transaction); returns the new generation."""
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('generation', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('updated_at', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(time.time()),),
        )
        return self.generation

    def _apply_to_derived(
        self,
        removed_rows: list[int],
        added_rows: list[int],
        vectors: list[np.ndarray],
        texts: list[str],
        generation: int | None,
    ) -> None:
        """Apply one committed write to the in-memory indexes; they are then of ``generation`` if
        they were of the one just before it (otherwise another process wrote too, and the next
        save reloads them)."""
        if generation is not None and generation == self._view_generation + 1:
            self._view_generation = generation
        if removed_rows:
            self._vectors.remove(removed_rows)
            self._bm25.delete(removed_rows)
        if added_rows:
            self._vectors.add(np.array(added_rows, dtype=np.int64), np.vstack(vectors))
            self._bm25.add(added_rows, texts)
        if removed_rows or added_rows:
            self._dirty = True
            if self._vectors.wants_rebuild(self.settings.vector_index, len(self._vectors)):
                self._rebuild_vectors()  # switch to IVF past the crossover, or retrain an outgrown IVF

    def set_vector_index(self, setting: str) -> bool:
        """Change the ``vector_index`` setting (``auto``, ``flat``, ``ivf``) and save; the caller holds the writer lock.

        The vector index is rebuilt from the stored vectors when the setting asks for another
        kind; the generation is bumped so that other processes with the index open reload it.
        Returns True when the setting changed.
        """
        from index.vectors import check_setting

        check_setting(setting)
        if setting == self.settings.vector_index:
            return False
        self.settings = replace(self.settings, vector_index=setting)
        if self._vectors.wants_rebuild(setting, len(self._vectors)):
            self._rebuild_vectors()
        with self._db:
            generation = self._bump_generation()
        if generation == self._view_generation + 1:  # nothing else was written: the view stays current
            self._view_generation = generation
        self.save()
        return True

    def save(self) -> None:
        """Write the derived files (vectors, BM25) and the manifest, each atomically (call it holding ``writer_lock``).

        The files are stamped with the generation they were built from; when the store has moved
        past this instance's view, the view is reloaded first, so a stamp never claims chunks the
        files lack.
        """
        self._sync_view()
        generation = self._view_generation
        self._vectors.save(self.index_dir / VECTORS_NAME)
        self._bm25.save(self.index_dir)
        atomic_write_json(
            self.index_dir / VECTORS_STAMP_NAME,
            {
                "generation": generation,
                "bm25_generation": generation,
                "bm25_text": BM25_TEXT_VERSION,
                "count": len(self._vectors),
                "vector_index": self._vectors.info.to_json(),
            },
        )
        self._write_manifest()
        self._dirty = False

    def _try_save(self) -> bool:
        """Save unless another process holds the write lock (then it will save itself)."""
        try:
            with self._folder_lock():
                self.save()
            return True
        except (IndexStoreError, OSError):
            return False

    def _write_manifest(self) -> None:
        documents, chunks = self.counts()
        atomic_write_json(
            self.index_dir / MANIFEST_NAME,
            {
                "format_version": FORMAT_VERSION,
                "settings": self.settings.to_json(),
                "documents": documents,
                "chunks": chunks,
                "vector_index": self.vector_index_kind,
                "vector_index_info": self._vectors.info.to_json(),
                "updated_at": self.updated_at,
            },
        )

    # ---- reading ---------------------------------------------------------------------------

    @property
    def vector_index_kind(self) -> str:
        """What the vector index is, in one line (``flat (exact inner product)``, or IVF and its parameters)."""
        return self._vectors.info.describe()

    @property
    def vector_count(self) -> int:
        """How many vectors the vector index holds."""
        return len(self._vectors)

    @property
    def updated_at(self) -> float | None:
        return _updated_at(self._db)

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) in the store."""
        return _counts(self._db)

    def document_hashes(self) -> dict[str, str]:
        """document id -> content sha256, to tell unchanged documents from changed ones."""
        return dict(self._db.execute("SELECT id, sha256 FROM documents"))

    def documents(self) -> list[DocumentInfo]:
        """Every document with its chunk count, ordered by source."""
        query = (
            "SELECT d.id, d.source, d.title, d.sha256, COUNT(c.rowid), d.added_at FROM documents d"
            " LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id ORDER BY d.source, d.id"
        )
        return [DocumentInfo(*row) for row in self._db.execute(query)]

    def added_folders(self) -> list[str]:
        """The folders documents were added from, in the order first added (see ``record_added_folders``)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'added_folders'").fetchone()
        return [str(folder) for folder in json.loads(row[0])] if row else []

    def record_added_folders(self, paths: Iterable[str | Path]) -> None:
        """Remember the folders ``paths`` name (a file's own folder for a file), so a page can show a
        source's path relative to the folder it was added from instead of its whole absolute path."""
        folders = self.added_folders()
        for path in paths:
            resolved = Path(path).expanduser().resolve()
            folder = resolved if resolved.is_dir() else resolved.parent
            if resolved.exists() and str(folder) not in folders:
                folders.append(str(folder))
        with self._db:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('added_folders', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (json.dumps(folders),),
            )

    def document_rows(self) -> Iterator[tuple[str, str, str]]:
        """``(id, sha256, source)`` of every document, without text."""
        yield from self._db.execute("SELECT id, sha256, source FROM documents")

    def document_sources(self) -> dict[str, str]:
        """document id -> source path."""
        return dict(self._db.execute("SELECT id, source FROM documents"))

    def get_document(self, document_id: str) -> Document | None:
        """The stored document, text included, or None."""
        row = self._db.execute(
            f"SELECT id, source, title, text, metadata, page_starts, sections, {self._blocks_column}"
            " FROM documents WHERE id = ?",
            (document_id,),
        ).fetchone()
        if row is None:
            return None
        return Document(
            id=row[0], source=row[1], title=row[2], text=row[3],
            metadata=json.loads(row[4]), page_starts=json.loads(row[5]),
            sections=[Section(start, heading) for start, heading in json.loads(row[6])],
            blocks=[Block(*block) for block in json.loads(row[7])],
        )

    @property
    def _blocks_column(self) -> str:
        """``blocks`` where the store has it; an index older than format 3 (opened to be rebuilt) has none."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(documents)")}
        return "blocks" if "blocks" in columns else "'[]'"

    def vectors_by_text(self, document_id: str) -> dict[str, np.ndarray]:
        """chunk text -> stored vector for a document, so unchanged chunks of a changed file are not re-embedded."""
        return {
            text: np.frombuffer(blob, dtype=np.float32)
            for text, blob in self._db.execute("SELECT text, vector FROM chunks WHERE document_id = ?", (document_id,))
        }

    def document_chunks(self, document_id: str) -> tuple[list[Chunk], np.ndarray]:
        """A document's chunks in order, with their stored vectors (one row each)."""
        chunks, vectors = [], []
        query = (
            "SELECT id, document_id, text, start, end, page, heading, token_count, blocks, vector FROM chunks"
            " WHERE document_id = ? ORDER BY rowid"
        )
        for row in self._db.execute(query, (document_id,)):
            chunks.append(
                Chunk(
                    id=row[0], document_id=row[1], text=row[2], start=row[3], end=row[4], page=row[5],
                    heading=row[6], token_count=row[7], blocks=tuple(tuple(block) for block in json.loads(row[8])),
                )
            )
            vectors.append(np.frombuffer(row[9], dtype=np.float32))
        matrix = np.vstack(vectors) if vectors else np.zeros((0, self.settings.dimension), np.float32)
        return chunks, matrix

    def get_chunks(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        """Chunks by row id (the ids FAISS and BM25 return)."""
        query = (
            "SELECT rowid, id, document_id, text, start, end, page, heading, token_count, blocks"
            f" FROM chunks WHERE rowid IN {_ROWS_PARAMETER}"
        )
        fetched = self._db.execute(query, (_rows_json(rows),)).fetchall()
        documents = self._sources_and_titles({row[2] for row in fetched})
        found: dict[int, StoredChunk] = {}
        for row in fetched:
            if row[2] not in documents:  # deleted by another process between the two reads
                continue
            blocks = () if row[9] == "[]" else tuple(tuple(block) for block in json.loads(row[9]))
            chunk = Chunk(
                id=row[1], document_id=row[2], text=row[3], start=row[4], end=row[5],
                page=row[6], heading=row[7], token_count=row[8], blocks=blocks,
            )
            source, title = documents[row[2]]
            found[row[0]] = StoredChunk(row=row[0], chunk=chunk, source=source, title=title)
        return found

    def rows_for_documents(self, document_ids: Iterable[str]) -> set[int]:
        """Chunk row ids of the given documents (for filtered searches)."""
        ids = list(document_ids)
        rows: set[int] = set()
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows.update(r for (r,) in self._db.execute(f"SELECT rowid FROM chunks WHERE document_id IN ({marks})", part))
        return rows

    def search_dense(
        self, query_vector: np.ndarray, k: int, allowed_rows: set[int] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        """The ``k`` chunks nearest to ``query_vector`` by inner product, best first."""
        return self.resolve(self.dense_hits(query_vector, k, allowed_rows))

    def dense_hits(
        self, query_vector: np.ndarray, k: int, allowed_rows: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """``search_dense`` as ``(row, score)`` pairs, without reading the chunks from SQLite."""
        return self._vectors.search(query_vector, k, allowed_rows)

    def search_bm25(self, query: str, k: int, allowed_rows: set[int] | None = None) -> list[tuple[StoredChunk, float]]:
        """The ``k`` chunks with the highest BM25 score for ``query``, best first."""
        return self.resolve(self.bm25_hits(query, k, allowed_rows))

    def bm25_hits(self, query: str, k: int, allowed_rows: set[int] | None = None) -> list[tuple[int, float]]:
        """``search_bm25`` as ``(row, score)`` pairs, without reading the chunks from SQLite."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return self._bm25.search(query, k, allowed_ids=allowed_rows)

    def term_document_frequencies(self, stems: Sequence[str]) -> tuple[int, list[int]]:
        """(number of chunks, in how many chunks each stem occurs), from the BM25 index: corpus statistics that
        do not change with which passages a question retrieved."""
        return self._bm25.document_frequencies(stems)

    def document_ids(self, rows: Sequence[int]) -> dict[int, str]:
        """row -> document id for chunk rows (cheap: no text is read).

        Answered from memory (see :meth:`_remembered`): a per-document search asks for about 200 rows a
        query, and SQLite took 0.7 ms p50 / 1.8 ms p95 of SciFact's 9 / 14 ms for them (idle machine).
        """
        return self._remembered(
            "document of row",
            rows,
            count_sql="SELECT COUNT(*) FROM chunks",
            all_sql="SELECT rowid, document_id FROM chunks",  # the covering index on document_id: 12k rows in ~8 ms
            some_sql=f"SELECT rowid, document_id FROM chunks WHERE rowid IN {_ROWS_PARAMETER}",
            preload_when_at_most=_PRELOAD_CHUNKS,
        )

    def _sources_and_titles(self, document_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """document id -> (source, title), from memory like :meth:`document_ids` (a JOIN was 40 % of a chunk fetch)."""
        return self._remembered(
            "source and title",
            list(document_ids),
            count_sql="SELECT COUNT(*) FROM documents",
            all_sql="SELECT id, source, title FROM documents",  # 5k SciFact documents in ~14 ms
            some_sql=f"SELECT id, source, title FROM documents WHERE id IN {_ROWS_PARAMETER}",
            preload_when_at_most=_PRELOAD_DOCUMENTS,
        )

    def _remembered(
        self, name: str, keys: Sequence[Any], *, count_sql: str, all_sql: str, some_sql: str, preload_when_at_most: int
    ) -> dict[Any, Any]:
        """``keys``' values (a row's second column, or its further columns as a tuple), kept in memory by generation.

        A commit by anyone (this process or another) bumps the store's generation, which starts the memo
        again, since SQLite may give a deleted chunk's row id to a new chunk. A table of at most
        ``preload_when_at_most`` rows is read whole on first use; a bigger one remembers the keys it was
        asked for (``some_sql`` takes them as one JSON array), up to that many, then starts again. A new
        memo replaces the old one in one assignment, so a search on another thread never sees it half made.
        """
        generation = self.generation
        memo = self._memos.get(name)
        if memo is None or memo.generation != generation or len(memo.values) > preload_when_at_most:
            whole = self._db.execute(count_sql).fetchone()[0] <= preload_when_at_most
            memo = _GenerationMemo(generation, _key_values(self._db.execute(all_sql)) if whole else {}, whole)
            self._memos[name] = memo
        values = memo.values
        unknown = [] if memo.complete else [key for key in keys if key not in values]
        if unknown:
            values.update(_key_values(self._db.execute(some_sql, (json.dumps(unknown),))))
        return {key: values[key] for key in keys if key in values}

    def resolve(self, hits: list[tuple[int, float]]) -> list[tuple[StoredChunk, float]]:
        """``(row, score)`` pairs as ``(StoredChunk, score)``, in order; rows no longer stored are left out."""
        chunks = self.get_chunks([row for row, _ in hits])
        return [(chunks[row], score) for row, score in hits if row in chunks]

    def status(self) -> IndexStatus:
        return _status(self.index_dir, self.settings, self._db, self.vector_index_kind)


_PRELOAD_CHUNKS = 200_000
"""Indexes of up to this many chunks keep every row's document id in memory (about 25 MB at the limit)."""
_PRELOAD_DOCUMENTS = 20_000
"""... and up to this many documents every document's source and title (a full read of the documents
table, which holds their texts: 5k SciFact abstracts in about 14 ms)."""


@dataclass(frozen=True)
class _GenerationMemo:
    """Values read from SQLite at one generation of the store; ``complete`` when the whole table was read."""

    generation: int
    values: dict[Any, Any]
    complete: bool


def _key_values(rows: Iterable[tuple[Any, ...]]) -> dict[Any, Any]:
    """First column -> second column, or -> the further columns as a tuple when there are several."""
    return {row[0]: row[1] if len(row) == 2 else tuple(row[1:]) for row in rows}


_ROWS_PARAMETER = "(SELECT value FROM json_each(?))"
"""Row ids passed as one JSON array: one statement text whatever their number, so SQLite's statement
cache serves every search (a list of ``?`` marks made a new statement to parse and plan each time).
Measured on SciFact, 180 rows: 0.70 ms p50 with marks, 0.52 ms with json_each."""


def _rows_json(rows: Iterable[int]) -> str:
    return json.dumps([int(row) for row in rows])
