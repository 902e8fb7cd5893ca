"""The index folder: add, update, delete, search after reopen, unknown ids, empty index, stale derived
files rebuilt from SQLite, brute-force oracle for dense search, and no pickle anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.store import (
    VECTORS_NAME,
    VECTORS_STAMP_NAME,
    IndexNotFoundError,
    IndexSettings,
    IndexStore,
)
from index.types import Chunk, Document

DIMENSION = 8


def _document(doc_id: str, texts: list[str]) -> tuple[Document, list[Chunk], np.ndarray]:
    text = " ".join(texts)
    document = Document(id=doc_id, source=f"/docs/{doc_id}.txt", title=doc_id, text=text, metadata={"sha256": doc_id})
    chunks, offset = [], 0
    for number, piece in enumerate(texts):
        chunks.append(Chunk(id=f"{doc_id}-{number}", document_id=doc_id, text=piece, start=offset, end=offset + len(piece)))
        offset += len(piece) + 1
    rng = np.random.default_rng(abs(hash(doc_id)) % 2**32)
    vectors = rng.normal(size=(len(texts), DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return document, chunks, vectors


@pytest.fixture()
def store(tmp_path: Path) -> IndexStore:
    return IndexStore.create(tmp_path / "idx", IndexSettings(embedding_model="toy", dimension=DIMENSION))


def test_empty_index_returns_nothing(store):
    assert store.search_dense(np.ones(DIMENSION, np.float32), k=5) == []
    assert store.search_bm25("anything", k=5) == []
    assert store.counts() == (0, 0)


def test_dense_search_matches_brute_force_after_reopen(store, tmp_path):
    batch = [_document(f"doc{i}", [f"text {i} a", f"text {i} b", f"text {i} c"]) for i in range(40)]
    store.write_documents(batch)
    store.save()
    reopened = IndexStore.open(tmp_path / "idx")
    all_vectors = np.vstack([vectors for _, _, vectors in batch])
    all_ids = [chunk.id for _, chunks, _ in batch for chunk in chunks]
    query = np.random.default_rng(7).normal(size=DIMENSION).astype(np.float32)
    expected = [all_ids[i] for i in np.argsort(-(all_vectors @ query))[:10]]
    hits = reopened.search_dense(query, k=10)
    assert [hit.chunk.id for hit, _ in hits] == expected
    assert hits[0][1] == pytest.approx(float(np.max(all_vectors @ query)), abs=1e-5)


def test_update_replaces_old_chunks_and_delete_removes_them(store, tmp_path):
    store.write_documents([_document("a", ["alpha apples"]), _document("b", ["bravo bananas"])])
    store.write_documents([_document("a", ["alpha apricots", "alpha avocados"])])
    assert store.counts() == (2, 3)
    assert [hit.chunk.text for hit, _ in store.search_bm25("apples", k=5)] == []
    assert {hit.chunk.text for hit, _ in store.search_bm25("alpha", k=5)} == {"alpha apricots", "alpha avocados"}

    assert store.delete_documents(["b", "never-added"]) == 1
    store.save()
    reopened = IndexStore.open(tmp_path / "idx")
    assert reopened.counts() == (1, 2)
    assert reopened.search_bm25("bananas", k=5) == []
    assert {hit.chunk.document_id for hit, _ in reopened.search_dense(np.ones(DIMENSION, np.float32), k=10)} == {"a"}


def test_stale_vector_files_are_rebuilt_from_sqlite(store, tmp_path):
    """A crash after the SQLite commit but before the FAISS file was rewritten loses nothing."""
    store.write_documents([_document("a", ["alpha"])])
    store.save()
    stamp = json.loads((tmp_path / "idx" / VECTORS_STAMP_NAME).read_text())
    store.write_documents([_document("b", ["bravo"])])  # committed, derived files not saved
    store.close()
    assert json.loads((tmp_path / "idx" / VECTORS_STAMP_NAME).read_text()) == stamp

    reopened = IndexStore.open(tmp_path / "idx")
    found = {hit.chunk.document_id for hit, _ in reopened.search_dense(np.ones(DIMENSION, np.float32), k=10)}
    assert found == {"a", "b"}
    assert [hit.chunk.document_id for hit, _ in reopened.search_bm25("bravo", k=5)] == ["b"]
    assert json.loads((tmp_path / "idx" / VECTORS_STAMP_NAME).read_text())["generation"] == reopened.generation


def test_filtered_search_returns_only_allowed_rows(store):
    store.write_documents([_document(f"d{i}", [f"shared word {i}"]) for i in range(10)])
    allowed = store.rows_for_documents(["d3", "d7"])
    dense = store.search_dense(np.ones(DIMENSION, np.float32), k=10, allowed_rows=allowed)
    lexical = store.search_bm25("shared word", k=10, allowed_rows=allowed)
    assert {hit.chunk.document_id for hit, _ in dense} == {"d3", "d7"}
    assert {hit.chunk.document_id for hit, _ in lexical} == {"d3", "d7"}


def test_opening_a_folder_without_an_index_says_so(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index here.*rag add"):
        IndexStore.open(tmp_path / "nothing")


def test_k_below_one_is_refused(store):
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        store.search_dense(np.ones(DIMENSION, np.float32), k=0)


def test_index_files_are_not_pickles(store, tmp_path):
    store.write_documents([_document("a", ["alpha"])])
    store.save()
    folder = tmp_path / "idx"
    json.loads((folder / "manifest.json").read_text())
    assert (folder / VECTORS_NAME).read_bytes()[:4] != b"\x80\x04"  # FAISS's own format, not a pickle
    from safetensors.numpy import load_file  # an independent reader of the BM25 file's layout

    assert all(array.dtype != object for array in load_file(folder / "bm25.safetensors").values())


def _rows_of(store: IndexStore, document_id: str) -> list[int]:
    return sorted(store.rows_for_documents([document_id]))


@pytest.mark.parametrize("preload", [True, False], ids=["whole index in memory", "rows remembered"])
def test_document_ids_follow_deletes_row_reuse_and_other_processes_writes(store, tmp_path, monkeypatch, preload):
    """document_ids and chunk fetches answer from memory (a per-document search's SQLite lookups were 0.7 ms of 9):
    a row id SQLite hands to a new chunk after a delete, or a write by another process, must never be answered stale."""
    if not preload:
        monkeypatch.setattr("index.store._PRELOAD_CHUNKS", 0)
        monkeypatch.setattr("index.store._PRELOAD_DOCUMENTS", 0)
    store.write_documents([_document("first", ["alpha one", "alpha two"])])
    store.save()
    rows = _rows_of(store, "first")
    assert store.document_ids(rows) == dict.fromkeys(rows, "first")
    store.delete_documents(["first"])
    store.write_documents([_document("second", ["beta one", "beta two"])])
    store.save()
    reused = _rows_of(store, "second")
    assert set(reused) & set(rows), "SQLite no longer reuses the deleted rows: this test lost its point"
    assert store.document_ids(reused + rows) == dict.fromkeys(reused, "second")

    other = IndexStore.open(tmp_path / "idx")  # another process's connection to the same folder
    other.delete_documents(["second"])
    other.write_documents([_document("third", ["gamma one", "gamma two"])])
    other.save()
    other.close()
    third = _rows_of(store, "third")
    assert store.document_ids(third + reused) == {row: "third" for row in third}
    assert {hit.source for hit in store.get_chunks(third).values()} == {"/docs/third.txt"}

    document, chunks, vectors = _document("third", ["gamma one", "gamma two"])
    retitled = Document(id="third", source="/docs/moved/third.txt", title="Gamma", text=document.text, metadata={"sha256": "x"})
    other = IndexStore.open(tmp_path / "idx")
    other.write_documents([(retitled, chunks, vectors)])
    other.save()
    other.close()
    fetched = store.get_chunks(_rows_of(store, "third")).values()
    assert {(hit.source, hit.title) for hit in fetched} == {("/docs/moved/third.txt", "Gamma")}
