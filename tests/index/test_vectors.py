"""The vector index: one contract for exact flat and approximate IVF (add, remove, re-add, save, memory-mapped
reopen, filters), IVF recall against exact search, and the store choosing, recording and switching the kind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from index.store import VECTORS_NAME, VECTORS_STAMP_NAME, IndexSettings, IndexStore, read_status
from index.types import Chunk, Document
from index.vectors import (
    IVF_FROM_CHUNKS,
    VectorIndex,
    VectorIndexError,
    VectorIndexInfo,
    ivf_lists,
    kind_for,
)
from tests.conftest import REPO_ROOT

DIMENSION = 32


def clustered_vectors(count: int, seed: int = 0, clusters: int = 200, dimension: int = DIMENSION) -> np.ndarray:
    """Unit vectors around random centres: structured like real embeddings (uniform random vectors mislead IVF)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dimension))
    vectors = centres[rng.integers(0, clusters, count)] + rng.normal(scale=0.35, size=(count, dimension))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return [int(rows[i]) for i in np.argsort(-(vectors @ query), kind="stable")[:k]]


def recall_at_10(index: VectorIndex, vectors: np.ndarray, rows: np.ndarray, queries: np.ndarray) -> float:
    found = [
        len({row for row, _ in index.search(query, 10)} & set(exact_top(vectors, rows, query, 10))) / 10
        for query in queries
    ]
    return float(np.mean(found))


@pytest.fixture(params=["flat", "ivf"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


# ---------------------------------------------------------------- the contract both kinds keep


def test_added_vectors_are_found_by_their_rows(kind: str) -> None:
    vectors = clustered_vectors(2000)
    rows = np.arange(2000, dtype=np.int64) * 7 + 3
    index = VectorIndex.empty(DIMENSION, kind)
    index.add(rows, vectors)
    assert len(index) == 2000
    for position in (0, 999, 1999):
        best_row, best_score = index.search(vectors[position], k=1)[0]
        assert best_row == rows[position]
        assert best_score == pytest.approx(1.0, abs=0.02)


def test_removed_rows_are_never_returned_and_can_be_added_again(kind: str) -> None:
    vectors = clustered_vectors(2000)
    rows = np.arange(2000, dtype=np.int64)
    index = VectorIndex.empty(DIMENSION, kind)
    index.add(rows, vectors)
    doomed = set(range(0, 2000, 3))
    assert index.remove(doomed | {999_999}) == len(doomed)  # an unknown row is ignored
    assert len(index) == 2000 - len(doomed)
    for position in range(0, 60, 3):
        assert not {row for row, _ in index.search(vectors[position], k=20)} & doomed
    index.add(np.array([3]), vectors[3:4])
    assert index.search(vectors[3], k=1)[0][0] == 3


def test_saved_index_reopens_memory_mapped_and_answers_the_same(kind: str, tmp_path: Path) -> None:
    vectors = clustered_vectors(3000)
    rows = np.arange(3000, dtype=np.int64) + 100
    index = VectorIndex.empty(DIMENSION, kind)
    index.add(rows, vectors)
    path = tmp_path / VECTORS_NAME
    index.save(path)
    reopened = VectorIndex.open(path, DIMENSION, index.info)
    assert reopened.info == index.info and len(reopened) == 3000
    mapped = Path("/proc/self/maps")
    if mapped.is_file():  # Linux: the index file itself is mapped into the process, not read into RAM
        assert str(path.resolve()) in mapped.read_text()
    for query in vectors[:20]:
        assert reopened.search(query, k=10) == index.search(query, k=10)
    # A mapped index is read-only in FAISS (an add would abort the process): changes copy it first.
    reopened.remove([100, 101])
    reopened.add(np.array([5]), vectors[2:3])
    assert reopened.search(vectors[0], k=1)[0][0] != 100
    assert reopened.search(vectors[2], k=2)[0][0] in (5, 102)
    assert len(reopened) == 2999


def test_filtered_search_returns_only_allowed_rows_even_when_few(kind: str) -> None:
    vectors = clustered_vectors(4000)
    rows = np.arange(4000, dtype=np.int64)
    index = VectorIndex.empty(DIMENSION, kind)
    index.add(rows, vectors)
    allowed = {5, 1234, 3999}  # spread over the lists: a narrow filter must still find all three
    hits = index.search(vectors[0], k=10, allowed_rows=allowed)
    assert {row for row, _ in hits} == allowed
    assert index.search(vectors[0], k=10, allowed_rows=set()) == []


def test_empty_index_and_bad_k(kind: str, tmp_path: Path) -> None:
    index = VectorIndex.empty(DIMENSION, kind)
    assert index.search(np.ones(DIMENSION, np.float32), k=3) == []
    assert index.remove([1, 2]) == 0
    index.save(tmp_path / VECTORS_NAME)
    assert len(VectorIndex.open(tmp_path / VECTORS_NAME, DIMENSION, index.info)) == 0
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        index.search(np.ones(DIMENSION, np.float32), k=0)


# ---------------------------------------------------------------- IVF quality and choices


def test_ivf_recall_at_10_against_exact_search_is_at_least_0_95() -> None:
    vectors = clustered_vectors(30_000, dimension=64, clusters=500)
    rows = np.arange(30_000, dtype=np.int64)
    index = VectorIndex.empty(64, "ivf")
    index.add(rows, vectors)
    assert index.info.nlist == ivf_lists(30_000)
    near = vectors[np.random.default_rng(2).integers(0, 30_000, 200)]  # queries near the data, as real ones are
    queries = near + np.random.default_rng(3).normal(scale=0.05, size=near.shape).astype(np.float32)
    assert recall_at_10(index, vectors, rows, queries) >= 0.95


def test_auto_switches_to_ivf_past_the_crossover_with_hysteresis() -> None:
    assert kind_for("auto", IVF_FROM_CHUNKS - 1) == "flat"
    assert kind_for("auto", IVF_FROM_CHUNKS) == "ivf"
    assert kind_for("auto", IVF_FROM_CHUNKS // 2 + 1, current="ivf") == "ivf"
    assert kind_for("auto", IVF_FROM_CHUNKS // 2 - 1, current="ivf") == "flat"
    assert kind_for("flat", 10**9) == "flat" and kind_for("ivf", 1) == "ivf"
    with pytest.raises(VectorIndexError, match="auto, flat, ivf"):
        kind_for("hnsw", 10)


def test_ivf_asks_for_retraining_when_it_doubles_or_halves() -> None:
    index = VectorIndex.empty(DIMENSION, "ivf")
    index.add(np.arange(1000), clustered_vectors(1000))
    assert index.info.trained_on == 1000
    assert not index.wants_rebuild("ivf", 1500)
    assert index.wants_rebuild("ivf", 2001) and index.wants_rebuild("ivf", 499)
    assert index.wants_rebuild("flat", 1000)


def test_a_file_of_another_kind_than_its_stamp_is_refused(tmp_path: Path) -> None:
    index = VectorIndex.empty(DIMENSION, "flat")
    index.add(np.arange(10), clustered_vectors(10))
    index.save(tmp_path / VECTORS_NAME)
    with pytest.raises(VectorIndexError, match="does not hold the ivf index"):
        VectorIndex.open(tmp_path / VECTORS_NAME, DIMENSION, VectorIndexInfo("ivf", 4, 2, 10))


# ---------------------------------------------------------------- the store


def _batch(start: int, vectors: np.ndarray, per_document: int = 10) -> list[tuple[Document, list[Chunk], np.ndarray]]:
    batch = []
    for first in range(0, len(vectors), per_document):
        doc_id = f"d{start + first}"
        texts = [f"chunk {start + first + n} of {doc_id}" for n in range(min(per_document, len(vectors) - first))]
        document = Document(id=doc_id, source=f"/docs/{doc_id}.txt", title=doc_id, text=" ".join(texts))
        chunks = [Chunk(id=f"{doc_id}-{n}", document_id=doc_id, text=t, start=0, end=len(t)) for n, t in enumerate(texts)]
        batch.append((document, chunks, vectors[first : first + len(texts)]))
    return batch


def test_forced_ivf_store_keeps_results_right_through_adds_deletes_and_reopen(tmp_path: Path) -> None:
    vectors = clustered_vectors(20_000)
    store = IndexStore.create(tmp_path / "idx", IndexSettings("toy", DIMENSION, vector_index="ivf"))
    store.write_documents(_batch(0, vectors[:12_000]))
    store.write_documents(_batch(12_000, vectors[12_000:]))
    store.save()
    assert store.vector_index_kind.startswith("ivf (approximate: IVF")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["settings"]["vector_index"] == "ivf"
    assert manifest["vector_index_info"]["kind"] == "ivf"
    assert json.loads((tmp_path / "idx" / VECTORS_STAMP_NAME).read_text())["vector_index"]["kind"] == "ivf"

    store.delete_documents(["d0", "d100"])  # rows 1-10 and 101-110
    hits = store.search_dense(vectors[0], k=5)
    assert all(hit.chunk.document_id not in ("d0", "d100") for hit, _ in hits)
    store.write_documents(_batch(0, vectors[:10]))  # d0 again, new rows
    assert store.search_dense(vectors[0], k=1)[0][0].chunk.document_id == "d0"
    store.save()
    reopened = IndexStore.open(tmp_path / "idx")
    assert reopened.vector_index_kind == store.vector_index_kind
    assert reopened.vector_count == 19_990
    assert reopened.search_dense(vectors[5], k=1)[0][0].chunk.text == "chunk 5 of d0"
    rows = np.array(sorted(reopened.get_chunks(list(range(1, 30_000))).keys()))
    stored = np.vstack([np.frombuffer(b, np.float32) for (b,) in reopened._db.execute("SELECT vector FROM chunks ORDER BY rowid")])
    queries = vectors[np.random.default_rng(5).integers(0, 20_000, 50)]
    assert recall_at_10(reopened._vectors, stored, rows, queries) >= 0.95


def test_switching_the_setting_rebuilds_from_stored_vectors_and_other_processes_reload(tmp_path: Path) -> None:
    vectors = clustered_vectors(3000)
    writer = IndexStore.create(tmp_path / "idx", IndexSettings("toy", DIMENSION))
    writer.write_documents(_batch(0, vectors))
    writer.save()
    reader = IndexStore.open(tmp_path / "idx")
    assert reader.vector_index_kind == "flat (exact inner product)"
    generation = reader.generation
    with writer.writer_lock():
        assert writer.set_vector_index("ivf")
    assert reader.generation > generation  # a server's collection sees the change and reopens
    status = read_status(tmp_path / "idx")
    assert status.vector_index.startswith("ivf") and status.vector_index_setting == "ivf"
    switched = IndexStore.open(tmp_path / "idx")
    assert switched.vector_index_kind.startswith("ivf") and switched.vector_count == 3000
    assert switched.search_dense(vectors[42], k=1)[0][0].chunk.text == "chunk 42 of d40"
    with writer.writer_lock():
        assert writer.set_vector_index("auto")  # 3,000 chunks: auto is flat again
        assert not writer.set_vector_index("auto")
    assert IndexStore.open(tmp_path / "idx").vector_index_kind == "flat (exact inner product)"


def test_rag_add_vector_index_alone_switches_and_status_shows_it(tmp_path: Path) -> None:
    from rag.cli.main import app

    store = IndexStore.create(tmp_path / "idx", IndexSettings("toy", DIMENSION))
    store.write_documents(_batch(0, clustered_vectors(500)))
    store.save()
    runner = CliRunner()
    result = runner.invoke(app, ["add", "--vector-index", "ivf", "--index", str(tmp_path / "idx"), "-q"])
    assert result.exit_code == 0, result.output
    status = runner.invoke(app, ["status", "--json", "--index", str(tmp_path / "idx")])
    assert json.loads(status.output)["vector_index"].startswith("ivf (approximate: IVF")
    assert json.loads(status.output)["vector_index"].endswith("setting ivf")
    bad = runner.invoke(app, ["add", "--vector-index", "hnsw", "--index", str(tmp_path / "idx")])
    assert bad.exit_code == 1 and "auto, flat, ivf" in bad.output


_WRITER = """
import sys, numpy as np
sys.path.insert(0, {root!r})
from tests.index.test_vectors import _batch, clustered_vectors, DIMENSION
from index.store import IndexSettings, IndexStore
store = IndexStore.open_or_create({folder!r}, IndexSettings("toy", DIMENSION, vector_index="ivf"))
vectors = clustered_vectors(50_000)
with store.writer_lock():
    for start in range(0, 50_000, 500):
        store.write_documents(_batch(start, vectors[start : start + 500]))
        if start == 0:
            store.save()
            print("saved", flush=True)
"""


def test_killed_add_to_an_ivf_index_reopens_rebuilt_from_sqlite(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    script = _WRITER.format(root=str(REPO_ROOT), folder=str(folder))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "saved"
    time.sleep(1.0)  # a few more batches are committed to SQLite, the derived files are not saved again
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-run, not finished
    store = IndexStore.open(folder)  # derived files behind the store: rebuilt from SQLite, nothing re-embedded
    _, chunks = store.counts()
    assert chunks > 500 and store.vector_count == chunks
    assert store.vector_index_kind.startswith("ivf")
    vectors = clustered_vectors(50_000)
    assert store.search_dense(vectors[chunks - 1], k=1)[0][0].chunk.text == f"chunk {chunks - 1} of d{(chunks - 1) // 10 * 10}"
    assert store.search_bm25(f"chunk {chunks - 1}", k=1)
