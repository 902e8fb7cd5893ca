"""The contract every index store keeps (``index.stores.Store``), run against each backend: the local folder and
Milvus Lite (a real Milvus Lite file, the packaged model).

Modelled on Haystack's document-store test mixins: one behaviour, one test, the same test for every store.
Add, re-add unchanged, update, delete, prune, filters, per-document results, reopen, empty index, model
mismatch refused, and the same queries giving the same results on both backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.ingest import add_to_index
from index.store import IndexNotFoundError, IndexSettings, SettingsMismatchError
from index.stores import Store, copy_store, create_store, open_store, read_store_status
from index.types import Chunk, Document
from rag import Retriever
from tests.conftest import REPO_ROOT

pytest.importorskip("pymilvus", reason='the Milvus backend needs the milvus extra: pip install -e ".[milvus]"')

BACKENDS = ["folder", "milvus-lite"]


def location_in(folder: Path, backend: str) -> str:
    """Where a test's index of ``backend`` lives inside ``folder``: the folder itself, or a Milvus Lite file."""
    if backend == "folder":
        return str(folder / "index")
    return f"milvus://{folder / 'index.db'}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture()
def location(tmp_path: Path, backend: str) -> str:
    return location_in(tmp_path, backend)


@pytest.fixture()
def notes(tmp_path: Path) -> Path:
    """Three small files: two Markdown notes and a text file."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "retries.md").write_text(
        "# Retries\n\nFailed uploads are retried three times with exponential backoff.\n\n"
        "## Limits\n\nThe backoff never waits longer than thirty seconds between attempts.\n"
    )
    (folder / "meeting.md").write_text("# Meeting\n\nThe quarterly planning meeting moved to Thursday at noon.\n")
    (folder / "garden.txt").write_text("Tomatoes need six hours of direct sunlight and deep watering twice a week.\n")
    return folder


def _sources(passages) -> set[str]:
    return {Path(p.source).name for p in passages}


def test_added_files_are_counted_listed_and_searchable(location: str, notes: Path, embedder) -> None:
    report = add_to_index(location, [notes], embedder=embedder, show_progress=False)
    assert (report.added, report.failed) == (3, [])
    status = read_store_status(location)
    assert (status.documents, status.chunks) == (3, report.chunks_embedded)
    store = open_store(location)
    assert isinstance(store, Store)
    assert [Path(info.source).name for info in store.documents()] == ["garden.txt", "meeting.md", "retries.md"]
    assert sum(info.chunk_count for info in store.documents()) == status.chunks
    store.close()
    retriever = Retriever.open(location)
    assert _sources(retriever.search("When is the planning meeting?", k=1)) == {"meeting.md"}
    assert _sources(retriever.search("tomatoes sunlight", k=1, mode="bm25")) == {"garden.txt"}


def test_readding_unchanged_files_embeds_nothing(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    again = add_to_index(location, [notes], embedder=embedder, show_progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 3, 0)


def test_changed_file_replaces_its_chunks_and_reuses_unchanged_vectors(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    retries = notes / "retries.md"
    retries.write_text(retries.read_text().replace("three times", "five times"))
    report = add_to_index(location, [notes], embedder=embedder, show_progress=False)
    assert (report.updated, report.unchanged) == (1, 2)
    retriever = Retriever.open(location)
    [passage] = retriever.search("how many times are uploads retried", k=1)
    assert "five times" in passage.text and "three times" not in passage.text
    store = retriever.store
    chunks, vectors = store.document_chunks(str(retries.resolve()))
    assert len(chunks) == len(vectors) >= 1
    assert store.counts()[1] == sum(len(store.document_chunks(info.id)[0]) for info in store.documents())


def test_deleted_documents_leave_no_chunks(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    retriever = Retriever.open(location)
    garden = str((notes / "garden.txt").resolve())
    assert retriever.delete([garden, "no-such-document"]) == 1
    assert retriever.store.counts()[0] == 2
    assert garden not in retriever.store.document_hashes()
    assert "garden.txt" not in _sources(retriever.search("tomatoes sunlight watering", k=5))
    assert retriever.store.get_document(garden) is None


def test_prune_removes_documents_whose_files_are_gone(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    (notes / "meeting.md").unlink()
    report = add_to_index(location, [notes], prune=True, embedder=embedder, show_progress=False)
    assert report.removed == 1
    store = open_store(location)
    assert sorted(Path(source).name for source in store.document_sources().values()) == ["garden.txt", "retries.md"]
    store.close()


def test_filters_keep_only_the_documents_asked_for(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    retriever = Retriever.open(location)
    query = "when does the meeting happen and how long does backoff wait"
    for mode in ("hybrid", "dense", "bm25"):
        assert _sources(retriever.search(query, k=10, mode=mode, sources=["*.txt"])) <= {"garden.txt"}
        assert _sources(retriever.search(query, k=10, mode=mode, sources=["*.md"])) == {"meeting.md", "retries.md"}
        meeting = str((notes / "meeting.md").resolve())
        assert _sources(retriever.search(query, k=10, mode=mode, document_ids=[meeting])) == {"meeting.md"}
        assert retriever.search(query, k=10, mode=mode, document_ids=[]) == []


def test_per_document_results_give_each_document_once(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    retriever = Retriever.open(location)
    passages = retriever.search("retries backoff limits meeting tomatoes", k=3, per_document=True)
    assert len(passages) == 3
    assert len({p.chunk.document_id for p in passages}) == 3


def test_adding_with_another_model_or_embedder_is_refused(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    (notes / "new.md").write_text("A new note.\n")
    with pytest.raises(SettingsMismatchError, match="embedding model"):
        add_to_index(location, [notes], model="another-model", show_progress=False)
    with pytest.raises(SettingsMismatchError, match="onnx-int8"):
        add_to_index(location, [notes], embedder_kind="onnx-fp32", show_progress=False)
    assert read_store_status(location).documents == 3  # nothing was added


def test_opening_an_empty_location_says_there_is_no_index(location: str) -> None:
    with pytest.raises(IndexNotFoundError):
        open_store(location)


def test_empty_index_finds_nothing(location: str) -> None:
    store = create_store(location, IndexSettings(embedding_model="toy", dimension=4))
    assert store.counts() == (0, 0)
    assert store.search_dense(np.ones(4, np.float32), k=5) == []
    assert store.search_bm25("anything", k=5) == []
    assert store.documents() == [] and store.get_document("nothing") is None
    store.close()


def test_documents_round_trip_whole_even_when_long(location: str) -> None:
    """A document is read back as it was written: text (here over Milvus's 64 kB VARCHAR), metadata, structure."""
    store = create_store(location, IndexSettings(embedding_model="toy", dimension=4))
    text = "Ünïcode lines, quotes \" ' and back\\slashes.\n" * 3000
    document = Document(id="doc \"1\"", source="/data/a'b.txt", title="A \"title\"", text=text, metadata={"sha256": "x", "n": 1})
    chunks = [Chunk(id="c1", document_id=document.id, text=text[:40], start=0, end=40, page=2, heading="H > I", token_count=9)]
    store.write_documents([(document, chunks, np.array([[0.5, 0.5, 0.5, 0.5]], np.float32))])
    store.save()
    read = store.get_document(document.id)
    assert read is not None and (read.text, read.title, read.source, read.metadata) == (text, document.title, document.source, document.metadata)
    [(hit, score)] = store.search_dense(np.array([0.5, 0.5, 0.5, 0.5], np.float32), k=3)
    assert hit.chunk == chunks[0] and (hit.source, hit.title) == (document.source, document.title)
    assert score == pytest.approx(1.0, abs=1e-5)
    assert store.document_hashes() == {document.id: "x"}
    store.close()


# ---- the same queries on both backends ------------------------------------------------------------

QUERIES = [
    "How do I add files to the index?",
    "Which file formats are supported?",
    "How do I ask a question from the command line?",
    "configuration environment variables",
    "Where is the index stored?",
]


@pytest.fixture(scope="module")
def both_backends(tmp_path_factory: pytest.TempPathFactory, embedder) -> dict[str, Retriever]:
    """The user guide indexed in a folder, and the same index copied into Milvus Lite (same vectors)."""
    folder = tmp_path_factory.mktemp("contract-both")
    local = location_in(folder, "folder")
    add_to_index(local, [REPO_ROOT / "docs"], embedder=embedder, show_progress=False)
    source = open_store(local)
    target = create_store(location_in(folder, "milvus-lite"), source.settings)
    copy_store(source, target)
    source.close()
    target.close()
    return {backend: Retriever.open(location_in(folder, backend)) for backend in BACKENDS}


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_same_queries_give_the_same_results_on_both_backends(both_backends: dict[str, Retriever], mode: str) -> None:
    folder, milvus = both_backends["folder"], both_backends["milvus-lite"]
    assert folder.store.counts() == milvus.store.counts()
    for query in QUERIES:
        expected = folder.search(query, k=5, mode=mode)
        found = milvus.search(query, k=5, mode=mode)
        assert [p.chunk.id for p in found] == [p.chunk.id for p in expected], query
        assert [p.score for p in found] == pytest.approx([p.score for p in expected], rel=1e-3, abs=1e-4), query


def test_copied_index_holds_the_same_chunks_and_vectors(both_backends: dict[str, Retriever]) -> None:
    folder, milvus = both_backends["folder"].store, both_backends["milvus-lite"].store
    assert folder.documents() == [
        info.__class__(info.id, info.source, info.title, info.sha256, info.chunk_count, folder_info.added_at)
        for info, folder_info in zip(milvus.documents(), folder.documents())
    ]
    for info in folder.documents():
        local_chunks, local_vectors = folder.document_chunks(info.id)
        milvus_chunks, milvus_vectors = milvus.document_chunks(info.id)
        assert milvus_chunks == local_chunks
        np.testing.assert_allclose(milvus_vectors, local_vectors, atol=1e-6)
        assert milvus.get_document(info.id) == folder.get_document(info.id)


def test_corpus_statistics_agree(both_backends: dict[str, Retriever]) -> None:
    """The extractive answerer weighs question words by how many chunks hold them: both stores count alike."""
    stems = ["index", "file", "question", "zzzunknown"]
    assert both_backends["milvus-lite"].store.term_document_frequencies(stems) == (
        both_backends["folder"].store.term_document_frequencies(stems)
    )
