"""The index in Milvus: one collection of chunks (text, vector, BM25 sparse vector) and one of documents.

:class:`MilvusStore` implements :class:`index.stores.Store` over ``pymilvus``, which speaks to a
Milvus Lite file (the engine in-process), a standalone server or a cluster with the same client.

What Milvus holds:

- ``<collection>``: one row a chunk, keyed by ``row`` (63 bits of the chunk id's sha256): chunk id,
  document id, source, title, text, page, offsets, heading, token count, block kinds, the sha256 of
  its text, the vector (inner product on normalised vectors; FLAT while small, IVF_SQ8 past
  ``index.vectors.IVF_FROM_CHUNKS``, as the folder does), and ``bm25_text`` with the sparse vector
  Milvus's built-in BM25 function makes of it.
- ``<collection>_documents``: one row a document (its text, metadata and structure as JSON, cut into
  parts when longer than a VARCHAR holds), with its sha256 so re-adding an unchanged file embeds
  nothing; and the settings rows (``meta:*``): the embedding model and embedder (also in the chunk
  collection's description), the vector index setting, the folders added, the last update.

Why BM25 is fed our own analysis: ``bm25_text`` holds the chunk's text as :func:`index.bm25.tokenize`
analyses it (stop words out, Snowball stems), joined by spaces, and queries are analysed the same
way; Milvus's standard analyzer then only splits on the spaces. So the folder and Milvus score the
same terms with the same k1 and b (Milvus Lite has no stemming filter; a server's ``english``
analyzer stems with another Snowball variant). Dense and BM25 hits are fused by the retriever
(``rag.retrieval.fusion``), not by Milvus's rankers, so both backends rank alike.

Milvus has no multi-row transaction: a document's chunks are written before its document row,
which is the commit mark; a run killed in between leaves chunks that the next ``rag add`` of that
file replaces (the file is not known as added, so it is read again).
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient
from pymilvus.exceptions import MilvusException

from index.bm25 import Bm25Index, tokenize
from index.chunking import embedding_text
from index.store import (
    DocumentInfo,
    IndexNotFoundError,
    IndexSettings,
    IndexStatus,
    IndexStoreError,
    SettingsMismatchError,
    StoredChunk,
)
from index.stores import POINTER_NAME, MilvusLocation, row_for_chunk
from index.structure import Block
from index.types import Chunk, Document, Section
from index.vectors import check_setting, ivf_lists, ivf_probes, kind_for

log = logging.getLogger(__name__)



VARCHAR_BYTES = 65_535
"""Milvus's largest VARCHAR, in bytes."""
BODY_CHARACTERS = 16_000
"""Characters of a document's JSON body a row holds: at most 4 UTF-8 bytes each, so under VARCHAR_BYTES."""
SEARCH_LIMIT = 16_384
"""Milvus's largest ``limit`` (topk) for one search or query."""
QUERY_BATCH = 1_000
STORE_VERSION = 1
"""Bump when what the collections hold changes; an index of another version is refused with how to rebuild."""
_BM25 = Bm25Index()  # only for its k1 and b: both backends score with the same parameters


class MilvusStore:
    """An index in a Milvus collection (Lite file or server), behind the same interface as the folder.

    >>> import tempfile
    >>> from index.stores import parse_location
    >>> location = parse_location(f"milvus://{tempfile.mkdtemp()}/demo.db")
    >>> store = MilvusStore.create(location, IndexSettings(embedding_model="toy", dimension=2))
    >>> doc = Document(id="a", source="a.txt", title="A", text="hello world")
    >>> chunk = Chunk(id="c1", document_id="a", text="hello world", start=0, end=11)
    >>> store.write_documents([(doc, [chunk], np.array([[1.0, 0.0]], dtype=np.float32))])
    >>> [hit.chunk.text for hit, _ in store.search_dense(np.array([1.0, 0.0], dtype=np.float32), k=1)]
    ['hello world']
    >>> store.close()
    """

    def __init__(self, location: MilvusLocation, client: MilvusClient, settings: IndexSettings) -> None:
        self.milvus = location
        self.settings = settings
        self._client = client
        self._chunks = location.collection
        self._documents = f"{location.collection}_documents"
        self._lock = threading.Lock()
        self._vector_index: dict[str, Any] = {}

    # ---- opening and creating -------------------------------------------------------------

    @classmethod
    def connect(cls, location: MilvusLocation) -> MilvusClient:
        """A client for ``location`` (a Lite file's folder is created first)."""
        if location.is_lite:
            Path(location.uri).parent.mkdir(parents=True, exist_ok=True)
            _check_lite_is_free(location)
        # Milvus Lite's in-process gRPC server refuses pymilvus's 10-second keepalive pings ("too_many_pings",
        # logged as errors on stderr of a long-lived `rag chat`); a connection inside one process needs none.
        options = {"grpc_options": {"grpc.keepalive_time_ms": 3_600_000}} if location.is_lite else {}
        try:
            return MilvusClient(uri=location.uri, token=location.token, **options)
        except MilvusException as error:
            raise IndexStoreError(f"{location.display}: cannot connect to Milvus ({error.message})") from None

    @classmethod
    def exists(cls, location: MilvusLocation) -> bool:
        client = cls.connect(location)
        try:
            _finish_interrupted_rebuild(client, location.collection)
            return bool(client.has_collection(location.collection))
        finally:
            client.close()

    @classmethod
    def create(cls, location: MilvusLocation, settings: IndexSettings) -> MilvusStore:
        """Make the two collections of a new index; ``IndexStoreError`` when the collection exists."""
        check_setting(settings.vector_index)
        client = cls.connect(location)
        if client.has_collection(location.collection):
            client.close()
            raise IndexStoreError(f"{location.display}: an index already exists here")
        store = cls(location, client, settings)
        store._create_collections()
        store._set_meta("settings", settings.to_json())
        store._set_meta("store_version", STORE_VERSION)
        return store

    @classmethod
    def open(cls, location: MilvusLocation) -> MilvusStore:
        """Open an existing index. Raises ``IndexNotFoundError`` when the collection is not there."""
        client = cls.connect(location)
        _finish_interrupted_rebuild(client, location.collection)
        if not client.has_collection(location.collection):
            client.close()
            raise IndexNotFoundError(
                f"{location.display}: no index here; create one with `rag add PATH --index {location.display}`"
            )
        placeholder = cls(location, client, IndexSettings(embedding_model="", dimension=1))
        if client.has_collection(placeholder._documents):
            client.load_collection(placeholder._documents)  # a new process finds both collections released
            client.load_collection(placeholder._chunks)
        settings = placeholder._get_meta("settings") if client.has_collection(placeholder._documents) else None
        version = placeholder._get_meta("store_version") if settings is not None else None
        if settings is None:
            client.close()
            raise IndexStoreError(f"{location.display}: the collection {location.collection!r} was not made by rag add")
        if version != STORE_VERSION:
            client.close()
            raise IndexStoreError(
                f"{location.display}: this index was written by another version (store version {version}); "
                "rebuild it with `rag add PATH --rebuild`"
            )
        store = cls(location, client, IndexSettings.from_json(settings))
        store._write_pointer()
        return store

    def _create_collections(self) -> None:
        client = self._client
        chunks = MilvusClient.create_schema(
            auto_id=False, enable_dynamic_field=False, description=json.dumps({"rag-assistant": self.settings.to_json()})
        )
        chunks.add_field("row", DataType.INT64, is_primary=True)
        chunks.add_field("chunk_id", DataType.VARCHAR, max_length=512)
        chunks.add_field("document_id", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        chunks.add_field("source", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        chunks.add_field("title", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        chunks.add_field("text", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        chunks.add_field("content_sha256", DataType.VARCHAR, max_length=64)
        chunks.add_field("start", DataType.INT64)
        chunks.add_field("end", DataType.INT64)
        chunks.add_field("page", DataType.INT64)  # 0: the format has no pages
        chunks.add_field("heading", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        chunks.add_field("token_count", DataType.INT64)
        chunks.add_field("blocks", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        chunks.add_field("vector", DataType.FLOAT_VECTOR, dim=self.settings.dimension)
        chunks.add_field(
            "bm25_text",
            DataType.VARCHAR,
            max_length=VARCHAR_BYTES,
            enable_analyzer=True,
            enable_match=True,
            analyzer_params={"tokenizer": "standard"},
        )
        chunks.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
        chunks.add_function(
            Function(
                name="bm25_of_text",
                function_type=FunctionType.BM25,
                input_field_names=["bm25_text"],
                output_field_names=["bm25"],
            )
        )
        indexes = client.prepare_index_params()
        indexes.add_index(field_name="vector", **self._wanted_vector_index(0))
        indexes.add_index(
            field_name="bm25",
            **_index_spec("SPARSE_INVERTED_INDEX", "BM25", {"bm25_k1": _BM25.k1, "bm25_b": _BM25.b}),
        )
        indexes.add_index(field_name="document_id", index_type="INVERTED")
        self._create(self._chunks, chunks, indexes)

        documents = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        documents.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
        documents.add_field("document_id", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        documents.add_field("part", DataType.INT64)  # -1: a settings row
        documents.add_field("parts", DataType.INT64)
        documents.add_field("source", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        documents.add_field("title", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        documents.add_field("sha256", DataType.VARCHAR, max_length=128)
        documents.add_field("added_at", DataType.DOUBLE)
        documents.add_field("chunk_count", DataType.INT64)
        documents.add_field("body", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        # Milvus wants a vector field in every collection; documents are never searched by vector.
        documents.add_field("unused_vector", DataType.FLOAT_VECTOR, dim=2)
        indexes = client.prepare_index_params()
        indexes.add_index(field_name="unused_vector", index_type="FLAT", metric_type="L2")
        self._create(self._documents, documents, indexes)

    def _create(self, name: str, schema: Any, indexes: Any) -> None:
        """Create a collection with its indexes, and load it.

        The indexes are created without waiting for them to be built (``sync=False``): waiting asks the
        server for a timestamp, which Milvus Lite 3.2.2 does not implement (it logged an error per index);
        Lite builds them at once, and a server serves a collection whose index is still being built.
        """
        self._client.create_collection(name, schema=schema, consistency_level="Strong")
        self._client.create_index(name, indexes, sync=False)
        self._client.load_collection(name)

    def _write_pointer(self) -> None:
        """Write ``milvus.json`` in the companion folder, so opening the folder opens this index."""
        folder = self.index_dir
        try:
            folder.mkdir(parents=True, exist_ok=True)
            pointer = folder / POINTER_NAME
            content = json.dumps(self.milvus.to_json(), indent=2)
            if not pointer.is_file() or pointer.read_text() != content:
                pointer.write_text(content)
        except OSError as error:  # a read-only home: the index works, only uploads and chat logs cannot be kept
            log.warning("%s: cannot write the companion folder %s (%s)", self.location, folder, error)

    def close(self) -> None:
        self._client.close()

    def mark_rebuild_complete(self) -> None:
        """Note in a rebuild's staging index that it holds everything: from here on the swap is finished
        on the next open if it is interrupted (see :func:`_finish_interrupted_rebuild`)."""
        self._set_meta(REBUILD_COMPLETE, True)

    def drop(self) -> None:
        """Remove both collections (what ``--rebuild`` does to the old index once the new one is complete)."""
        for name in (self._chunks, self._documents):
            self._client.drop_collection(name)

    def rename(self, collection: str) -> MilvusStore:
        """This index under another collection name (both collections renamed); returns the store there."""
        self._client.rename_collection(self._chunks, collection)
        self._client.rename_collection(self._documents, f"{collection}_documents")
        self._client.close()
        store = MilvusStore.open(replace(self.milvus, collection=collection))
        store._client.delete(store._documents, filter=f"key == {_quote('meta:' + REBUILD_COMPLETE)}")
        return store

    # ---- what the interface names ----------------------------------------------------------

    @property
    def location(self) -> str:
        return self.milvus.display

    @property
    def index_dir(self) -> Path:
        return self.milvus.companion_dir

    @property
    def generation(self) -> int:
        """Always 0: Milvus serves every committed write itself, so there is no view to reload."""
        return 0

    @property
    def updated_at(self) -> float | None:
        value = self._get_meta("updated_at")
        return float(value) if value is not None else None

    @property
    def vector_index_kind(self) -> str:
        described = self._described_vector_index()
        kind = described.get("index_type", "?")
        if kind == "IVF_SQ8":
            return f"ivf (approximate: Milvus IVF_SQ8, nlist {described.get('nlist', '?')})"
        return f"flat (exact inner product; Milvus {kind})"

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time within this process.

        Why no lock across processes: Milvus Lite locks its file itself (a second process cannot open
        it), and a Milvus server takes concurrent writes; two ``rag add`` runs of the same file
        against one server do the same work twice, which is wasteful but consistent.
        """
        if not self._lock.acquire(blocking=False):
            raise IndexStoreError(f"{self.location}: another writer is busy with this index; wait for it to finish")
        try:
            yield
        finally:
            self._lock.release()

    def save(self) -> None:
        """Flush what was written and switch the vector index type when the size asks for another."""
        self._client.flush(self._chunks)
        self._client.flush(self._documents)
        described = self._described_vector_index()  # first: what is built decides the hysteresis of `auto`
        wanted = self._wanted_vector_index(self.counts()[1])
        if described.get("index_type") != wanted["index_type"] or (
            wanted["index_type"] == "IVF_SQ8" and _outgrown(int(described.get("nlist", 1)), wanted["nlist"])
        ):
            log.info("%s: rebuilding the vector index as %s", self.location, wanted["index_type"])
            self._client.release_collection(self._chunks)
            self._client.drop_index(self._chunks, "vector")
            indexes = self._client.prepare_index_params()
            indexes.add_index(field_name="vector", **wanted)
            self._client.create_index(self._chunks, indexes, sync=False)
            self._client.load_collection(self._chunks)
            self._vector_index = {}

    def set_vector_index(self, setting: str) -> bool:
        check_setting(setting)
        if setting == self.settings.vector_index:
            return False
        self.settings = replace(self.settings, vector_index=setting)
        self._set_meta("settings", self.settings.to_json())
        self.save()
        return True

    def _wanted_vector_index(self, count: int) -> dict[str, Any]:
        current = "ivf" if self._vector_index.get("index_type") == "IVF_SQ8" else "flat"
        if kind_for(self.settings.vector_index, count, current) == "ivf":
            return _index_spec("IVF_SQ8", "IP", {"nlist": ivf_lists(max(count, 1))})
        return _index_spec("FLAT", "IP", {})

    def _described_vector_index(self) -> dict[str, Any]:
        if not self._vector_index:
            described = self._client.describe_index(self._chunks, "vector") or {}
            params = described.get("params") or {}
            if isinstance(params, str):
                params = json.loads(params)
            self._vector_index = {**params, **{k: v for k, v in described.items() if k != "params"}}
        return self._vector_index

    # ---- settings rows ----------------------------------------------------------------------

    def _get_meta(self, name: str) -> Any:
        rows = self._client.query(self._documents, filter=f"key == {_quote('meta:' + name)}", output_fields=["body"])
        return json.loads(rows[0]["body"]) if rows else None

    def _set_meta(self, name: str, value: Any) -> None:
        self._client.upsert(self._documents, [self._document_row(f"meta:{name}", "", -1, 0, json.dumps(value))])

    def _document_row(self, key: str, document_id: str, part: int, parts: int, body: str, **fields: Any) -> dict:
        return {
            "key": key,
            "document_id": document_id,
            "part": part,
            "parts": parts,
            "source": fields.get("source", ""),
            "title": fields.get("title", ""),
            "sha256": fields.get("sha256", ""),
            "added_at": fields.get("added_at", 0.0),
            "chunk_count": fields.get("chunk_count", 0),
            "body": body,
            "unused_vector": [0.0, 0.0],
        }

    # ---- reading ---------------------------------------------------------------------------

    def _count(self, collection: str, expression: str = "") -> int:
        rows = self._client.query(collection, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def counts(self) -> tuple[int, int]:
        return self._count(self._documents, "part == 0"), self._count(self._chunks)

    def status(self) -> IndexStatus:
        documents, chunks = self.counts()
        size = 0
        if self.milvus.is_lite and Path(self.milvus.uri).exists():
            size = sum(path.stat().st_size for path in Path(self.milvus.uri).rglob("*") if path.is_file())
        return IndexStatus(
            index_dir=self.location,
            documents=documents,
            chunks=chunks,
            embedding_model=self.settings.embedding_model,
            embedder=self.settings.embedder_kind,
            dimension=self.settings.dimension,
            vector_index=self.vector_index_kind,
            vector_index_setting=self.settings.vector_index,
            size_bytes=size,
            updated_at=self.updated_at,
            chunker=self.settings.chunker,
            backend="Milvus Lite" if self.milvus.is_lite else "Milvus server",
        )

    def _iterate(self, collection: str, expression: str, fields: list[str], within: str = "") -> Iterator[dict[str, Any]]:
        """Every row matching ``expression``, however many (one query returns at most 16,384).

        Why not pymilvus's query iterator: Milvus Lite 3.2.2 lacks the timestamp call it starts with,
        and each iterator logged an error and a warning. Instead a key range too large for one query
        is split in 16 and each part read on its own (row ids and document keys are uniform hashes,
        so the parts are even).
        """
        condition = " and ".join(f"({part})" for part in (expression, within) if part)
        count = self._count(collection, condition)
        if count == 0:
            return
        if count <= SEARCH_LIMIT:
            yield from self._client.query(collection, filter=condition, output_fields=fields, limit=count)
            return
        for part in _split(collection == self._chunks, within):
            yield from self._iterate(collection, expression, fields, part)

    def document_rows(self) -> Iterator[tuple[str, str, str]]:
        for row in self._iterate(self._documents, "part == 0", ["document_id", "sha256", "source"]):
            yield row["document_id"], row["sha256"], row["source"]

    def document_hashes(self) -> dict[str, str]:
        return {document_id: sha for document_id, sha, _ in self.document_rows()}

    def document_sources(self) -> dict[str, str]:
        return {document_id: source for document_id, _, source in self.document_rows()}

    def documents(self) -> list[DocumentInfo]:
        fields = ["document_id", "source", "title", "sha256", "chunk_count", "added_at"]
        infos = [
            DocumentInfo(r["document_id"], r["source"], r["title"], r["sha256"], int(r["chunk_count"]), float(r["added_at"]))
            for r in self._iterate(self._documents, "part == 0", fields)
        ]
        return sorted(infos, key=lambda info: (info.source, info.id))

    def get_document(self, document_id: str) -> Document | None:
        rows = list(
            self._iterate(
                self._documents,
                f"document_id == {_quote(document_id)} and part >= 0",
                ["part", "parts", "source", "title", "body"],
            )
        )
        rows.sort(key=lambda row: row["part"])
        if not rows or len(rows) != rows[0]["parts"]:
            return None
        body = json.loads("".join(row["body"] for row in rows))
        return Document(
            id=document_id,
            source=rows[0]["source"],
            title=rows[0]["title"],
            text=body["text"],
            metadata=body["metadata"],
            page_starts=body["page_starts"],
            sections=[Section(start, heading) for start, heading in body["sections"]],
            blocks=[Block(*block) for block in body["blocks"]],
        )

    def document_chunks(self, document_id: str) -> tuple[list[Chunk], np.ndarray]:
        rows = list(self._iterate(self._chunks, f"document_id == {_quote(document_id)}", [*_CHUNK_FIELDS, "vector"]))
        rows.sort(key=lambda row: (row["start"], row["end"]))
        chunks = [_chunk(row) for row in rows]
        vectors = np.array([row["vector"] for row in rows], dtype=np.float32).reshape(-1, self.settings.dimension)
        return chunks, vectors

    def added_folders(self) -> list[str]:
        return list(self._get_meta("added_folders") or [])

    def record_added_folders(self, paths: Iterable[str | Path]) -> None:
        folders = self.added_folders()
        for path in paths:
            resolved = Path(path).expanduser().resolve()
            folder = resolved if resolved.is_dir() else resolved.parent
            if resolved.exists() and str(folder) not in folders:
                folders.append(str(folder))
        self._set_meta("added_folders", folders)

    def vectors_by_text(self, document_id: str) -> dict[str, np.ndarray]:
        return {
            row["text"]: np.asarray(row["vector"], dtype=np.float32)
            for row in self._iterate(self._chunks, f"document_id == {_quote(document_id)}", ["text", "vector"])
        }

    def get_chunks(self, rows: Sequence[int]) -> dict[int, StoredChunk]:
        found: dict[int, StoredChunk] = {}
        for start in range(0, len(rows), QUERY_BATCH):
            part = [int(row) for row in rows[start : start + QUERY_BATCH]]
            if not part:
                continue
            for row in self._client.query(self._chunks, filter=f"row in {part}", output_fields=["row", *_CHUNK_FIELDS]):
                found[int(row["row"])] = StoredChunk(row=int(row["row"]), chunk=_chunk(row), source=row["source"], title=row["title"])
        return found

    def resolve(self, hits: list[tuple[int, float]]) -> list[tuple[StoredChunk, float]]:
        chunks = self.get_chunks([row for row, _ in hits])
        return [(chunks[row], score) for row, score in hits if row in chunks]

    def document_ids(self, rows: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for start in range(0, len(rows), QUERY_BATCH):
            part = [int(row) for row in rows[start : start + QUERY_BATCH]]
            if part:
                query = self._client.query(self._chunks, filter=f"row in {part}", output_fields=["row", "document_id"])
                found.update((int(row["row"]), row["document_id"]) for row in query)
        return found

    def rows_for_documents(self, document_ids: Iterable[str]) -> set[int]:
        ids = list(document_ids)
        rows: set[int] = set()
        for start in range(0, len(ids), QUERY_BATCH):
            expression = f"document_id in [{', '.join(_quote(i) for i in ids[start : start + QUERY_BATCH])}]"
            rows.update(int(row["row"]) for row in self._iterate(self._chunks, expression, ["row"]))
        return rows

    # ---- searching -------------------------------------------------------------------------

    def dense_hits(
        self, query_vector: np.ndarray, k: int, allowed_rows: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunks by inner product, as ``(row, score)``; only ``allowed_rows`` if given."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if allowed_rows is not None and not allowed_rows:
            return []
        params: dict[str, Any] = {"metric_type": "IP"}
        described = self._described_vector_index()
        if described.get("index_type") == "IVF_SQ8":
            nlist = int(described.get("nlist", 1))
            # As the folder's IVF (index.vectors.VectorIndex.search): more probes for deeper searches.
            params["params"] = {"nprobe": min(nlist, math.ceil(ivf_probes(nlist) * math.sqrt(max(k, 10) / 10)))}
        vector = np.asarray(query_vector, dtype=np.float32).reshape(-1).tolist()
        return self._search([vector], "vector", params, k, allowed_rows)

    def bm25_hits(self, query: str, k: int, allowed_rows: set[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks with the highest BM25 score (Milvus's BM25 function over our analysis)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        terms = tokenize(query)
        if not terms or (allowed_rows is not None and not allowed_rows):
            return []
        hits = self._search([" ".join(terms)], "bm25", {"metric_type": "BM25"}, k, allowed_rows)
        # Milvus's term weight carries a constant (k1 + 1) factor that ours (Lucene's current form) leaves out:
        # divided away, both backends give the same scores, not only the same ranking.
        return [(row, score / (1 + _BM25.k1)) for row, score in hits]

    def _search(
        self, data: list[Any], field: str, params: dict[str, Any], k: int, allowed_rows: set[int] | None
    ) -> list[tuple[int, float]]:
        expression = f"row in {sorted(allowed_rows)}" if allowed_rows else ""
        results = self._client.search(
            self._chunks,
            data=data,
            anns_field=field,
            limit=min(k, SEARCH_LIMIT),
            filter=expression,
            search_params=params,
            output_fields=[],
        )
        # BM25 scores are positive; Milvus Lite 3.2.2 reports them negated (its internal distance), a server
        # as they are: the absolute value is the score on both, and fusion needs higher-is-better scores.
        score = abs if params["metric_type"] == "BM25" else float
        return [(int(hit["row"]), float(score(hit["distance"]))) for hit in results[0]]

    def search_dense(
        self, query_vector: np.ndarray, k: int, allowed_rows: set[int] | None = None
    ) -> list[tuple[StoredChunk, float]]:
        return self.resolve(self.dense_hits(query_vector, k, allowed_rows))

    def search_bm25(self, query: str, k: int, allowed_rows: set[int] | None = None) -> list[tuple[StoredChunk, float]]:
        return self.resolve(self.bm25_hits(query, k, allowed_rows))

    def term_document_frequencies(self, stems: Sequence[str]) -> tuple[int, list[int]]:
        """(chunks, in how many chunks each stem occurs), counted by Milvus's text match over ``bm25_text``."""
        total = self._count(self._chunks)
        counts = [
            self._count(self._chunks, f"text_match(bm25_text, {_quote(stem)})") if stem.strip() else 0 for stem in stems
        ]
        return total, counts

    # ---- writing ---------------------------------------------------------------------------

    def write_documents(self, batch: Sequence[tuple[Document, Sequence[Chunk], np.ndarray]]) -> None:
        """Insert or replace documents: old rows deleted, chunks inserted, then the document rows (the commit mark)."""
        if not batch:
            return
        for document, chunks, vectors in batch:
            if len(chunks) != len(vectors):
                raise ValueError(f"{document.source}: {len(chunks)} chunks but {len(vectors)} vectors")
        ids = [document.id for document, _, _ in batch]
        self._delete_rows(ids)
        now = time.time()
        chunk_rows = [
            _chunk_row(chunk, document, vector)
            for document, chunks, vectors in batch
            for chunk, vector in zip(chunks, np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1))
        ]
        for start in range(0, len(chunk_rows), QUERY_BATCH):
            self._client.insert(self._chunks, chunk_rows[start : start + QUERY_BATCH])
        document_rows = [row for document, chunks, _ in batch for row in self._document_rows(document, len(chunks), now)]
        for start in range(0, len(document_rows), 100):
            self._client.insert(self._documents, document_rows[start : start + 100])
        self._set_meta("updated_at", now)

    def _document_rows(self, document: Document, chunk_count: int, now: float) -> list[dict[str, Any]]:
        body = json.dumps(
            {
                "text": document.text,
                "metadata": document.metadata,
                "page_starts": document.page_starts,
                "sections": [[s.start, s.heading] for s in document.sections],
                "blocks": [[b.start, b.end, b.kind, b.level] for b in document.blocks],
            },
            default=str,
        )
        parts = [body[start : start + BODY_CHARACTERS] for start in range(0, len(body), BODY_CHARACTERS)] or [""]
        key = hashlib.sha256(document.id.encode()).hexdigest()
        fields = {
            "source": _fit(document.source, "source path", document),
            "title": _fit(document.title, "title", document),
            "sha256": str(document.metadata.get("sha256", "")),
            "added_at": now,
            "chunk_count": chunk_count,
        }
        return [
            self._document_row(f"{key}:{number}", _fit(document.id, "id", document), number, len(parts), part, **fields)
            for number, part in enumerate(parts)
        ]

    def delete_documents(self, document_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(document_ids))
        present = 0
        for start in range(0, len(ids), QUERY_BATCH):
            part = ids[start : start + QUERY_BATCH]
            present += self._count(self._documents, f"part == 0 and document_id in [{', '.join(map(_quote, part))}]")
        self._delete_rows(ids)
        if present:
            self._set_meta("updated_at", time.time())
        return present

    def _delete_rows(self, document_ids: list[str]) -> None:
        """Delete documents' rows, the document row first: a crash in between leaves the file to be read again."""
        for start in range(0, len(document_ids), QUERY_BATCH):
            listed = ", ".join(_quote(i) for i in document_ids[start : start + QUERY_BATCH])
            self._client.delete(self._documents, filter=f"part >= 0 and document_id in [{listed}]")
            self._client.delete(self._chunks, filter=f"document_id in [{listed}]")


_CHUNK_FIELDS = ["chunk_id", "document_id", "source", "title", "text", "start", "end", "page", "heading", "token_count", "blocks"]


def _check_lite_is_free(location: MilvusLocation) -> None:
    """Raise ``IndexStoreError`` when another process has the Milvus Lite file open.

    Why check first: Milvus Lite serves one process per file (a file lock); when another holds it,
    the client logs Lite's traceback and says only "Open local milvus failed". A file this process
    already serves (pymilvus reuses its engine) is not checked: our own lock would look taken.
    """
    from milvus_lite.server_manager import server_manager_instance

    lock_path = Path(location.uri) / "LOCK"  # Lite's lock file (milvus_lite.db.MilvusLite._acquire_lock)
    if os.path.abspath(location.uri) in server_manager_instance._servers or not lock_path.exists():
        return
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexStoreError(
                f"{location.display}: another process has this Milvus Lite file open (Lite serves one process"
                " at a time: stop it, e.g. a running `rag chat`, or use a Milvus server)"
            ) from None
        fcntl.flock(lock, fcntl.LOCK_UN)


def release_lite(path: str | Path) -> None:
    """Stop this process's Milvus Lite engine for the file ``path`` (it keeps its files open until then)."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk(
        id=row["chunk_id"],
        document_id=row["document_id"],
        text=row["text"],
        start=int(row["start"]),
        end=int(row["end"]),
        page=int(row["page"]) or None,
        heading=row["heading"],
        token_count=int(row["token_count"]),
        blocks=tuple(tuple(block) for block in json.loads(row["blocks"])),
    )


def _chunk_row(chunk: Chunk, document: Document, vector: np.ndarray) -> dict[str, Any]:
    analysed = " ".join(tokenize(embedding_text(chunk, document.title)))
    return {
        "row": row_for_chunk(chunk.id),
        "chunk_id": chunk.id,
        "document_id": _fit(chunk.document_id, "id", document),
        "source": _fit(document.source, "source path", document),
        "title": _fit(document.title, "title", document),
        "text": _fit(chunk.text, "chunk text", document),
        "content_sha256": hashlib.sha256(chunk.text.encode()).hexdigest(),
        "start": chunk.start,
        "end": chunk.end,
        "page": chunk.page or 0,
        "heading": _fit(chunk.heading, "heading", document),
        "token_count": chunk.token_count,
        "blocks": _fit(json.dumps(chunk.blocks), "block list of a chunk", document),
        "vector": vector.tolist(),
        "bm25_text": _fit(analysed, "analysed chunk text", document),
    }


def _fit(value: str, what: str, document: Document) -> str:
    """``value`` if it fits a Milvus VARCHAR; else an error naming the document and the field."""
    if len(value.encode("utf-8", "surrogateescape")) > VARCHAR_BYTES:
        raise IndexStoreError(f"{document.source}: its {what} is longer than Milvus's {VARCHAR_BYTES:,}-byte limit")
    return value


def _quote(value: str) -> str:
    """``value`` as a string literal of a Milvus filter expression."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


_ROW_RANGE = re.compile(r"row >= (\d+) and row <= (\d+)")
_KEY_PREFIX = re.compile(r'key like "([0-9a-f]*)%"')


def _split(by_row: bool, within: str) -> list[str]:
    """A key range cut in 16: chunk rows (63-bit integers) by value, document keys (sha256 hex) by one more character."""
    if by_row:
        match = _ROW_RANGE.fullmatch(within)
        low, high = (int(match[1]), int(match[2]) + 1) if match else (0, 1 << 63)  # rows are 63-bit
        step = max(1, (high - low) // 16)
        edges = [*range(low, high, step)][:16] + [high]
        return [f"row >= {a} and row <= {b - 1}" for a, b in itertools.pairwise(edges) if a < b]
    match = _KEY_PREFIX.fullmatch(within)
    prefix = match[1] if match else ""
    return [f'key like "{prefix}{digit}%"' for digit in "0123456789abcdef"]


def _index_spec(index_type: str, metric_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """``add_index`` arguments whose parameters reach both Milvus Lite and a server.

    Why both forms: pymilvus 3 sends index parameters as flat key-value pairs, which a server reads,
    while Milvus Lite 3.2.2 reads only the older ``params`` JSON pair and silently ignores the rest
    (its BM25 then scored with k1 1.5, b 0.75 instead of ours). A server merges ``params`` into the
    flat pairs, so sending the same values both ways is safe for it.
    """
    return {"index_type": index_type, "metric_type": metric_type, **params, "params": {"params": dict(params)}}


def _outgrown(nlist: int, wanted: int) -> bool:
    """Retrain an IVF index when the right ``nlist`` has doubled or halved (as the folder retrains at 2x or 0.5x)."""
    return wanted >= 2 * nlist or wanted * 2 <= nlist


__all__ = ["MilvusStore", "SettingsMismatchError", "release_lite"]


REBUILD_COMPLETE = "rebuild_complete"
"""Settings row a rebuild's staging index gets once it holds every document, before the old index is dropped."""


def staging_collection(collection: str) -> str:
    """The collection a ``--rebuild`` of ``collection`` fills before it takes the old one's place."""
    return f"{collection}_rebuild"


def _finish_interrupted_rebuild(client: MilvusClient, collection: str) -> None:
    """Complete a ``--rebuild`` that stopped between dropping the old index and renaming the new one into place.

    A rebuild fills ``<collection>_rebuild``, marks it complete, drops the old collections, then renames
    the new ones. Milvus has no transaction over these steps, so a crash between them left the index
    missing (or its chunks without their documents collection) with every document in the staging
    collections. A staging index marked complete is the one the user asked for: its swap is finished
    here. One that is not marked complete is left to the next rebuild, which starts it again.
    """
    staging = staging_collection(collection)
    staging_documents = f"{staging}_documents"
    if not client.has_collection(staging_documents):
        return
    client.load_collection(staging_documents)
    marker = client.query(staging_documents, filter=f"key == {_quote('meta:' + REBUILD_COMPLETE)}", output_fields=["key"])
    if not marker:
        return
    log.warning("%s: finishing a rebuild that was interrupted before its new index took the old one's place", collection)
    if client.has_collection(staging):  # the new chunks are not in place yet: the old ones go first
        if client.has_collection(collection):
            client.drop_collection(collection)
        client.rename_collection(staging, collection)
    if client.has_collection(f"{collection}_documents"):
        client.drop_collection(f"{collection}_documents")
    client.rename_collection(staging_documents, f"{collection}_documents")
    client.load_collection(f"{collection}_documents")
    client.delete(f"{collection}_documents", filter=f"key == {_quote('meta:' + REBUILD_COMPLETE)}")
