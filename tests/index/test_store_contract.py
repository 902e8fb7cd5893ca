"""The contract every index store keeps (``index.stores.Store``), run against each backend: the local folder and
Milvus Lite (a real Milvus Lite file, the packaged model).

Modelled on Haystack's document-store test mixins: one behaviour, one test, the same test for every store.
Add, re-add unchanged, update, delete, prune, filters, per-document results, reopen, empty index, model
mismatch refused, and the same queries giving the same results on both backends.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.ingest import add_to_index
from index.store import IndexNotFoundError, IndexSettings, SettingsMismatchError
from index.stores import Store, copy_store, create_store, open_store, read_store_status
from index.types import Chunk, Document
from rag import Retriever
from rag.answering.assistant import Assistant
from tests.conftest import REPO_ROOT, rag_command

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


def test_rebuild_reembeds_every_document_in_place(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    before = read_store_status(location)
    report = add_to_index(location, [], rebuild=True, embedder=embedder, show_progress=False)
    after = read_store_status(location)
    assert report.chunks_embedded == before.chunks
    assert (after.documents, after.chunks, after.embedder) == (before.documents, before.chunks, before.embedder)
    assert _sources(Retriever.open(location).search("tomatoes sunlight", k=1)) == {"garden.txt"}


def test_forcing_the_approximate_vector_index_keeps_search_working(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    assert read_store_status(location).vector_index.startswith("flat")
    add_to_index(location, [], vector_index="ivf", embedder=embedder, show_progress=False)
    status = read_store_status(location)
    assert status.vector_index.startswith("ivf") and status.vector_index_setting == "ivf"
    retriever = Retriever.open(location)
    assert _sources(retriever.search("When is the planning meeting?", k=1, mode="dense")) == {"meeting.md"}
    add_to_index(location, [], vector_index="auto", embedder=embedder, show_progress=False)
    assert read_store_status(location).vector_index.startswith("flat")


def test_assistant_answers_with_citations(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    answer = Assistant(Retriever.open(location)).ask("How many times are failed uploads retried?")
    assert not answer.abstained and "three times" in answer.text
    assert answer.citations and all(Path(c.source).name == "retries.md" for c in answer.citations)


def test_langchain_retriever_returns_documents_with_their_metadata(location: str, notes: Path, embedder) -> None:
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    documents = Retriever.open(location).as_langchain(k=2).invoke("When is the planning meeting?")
    assert len(documents) == 2
    assert Path(documents[0].metadata["source"]).name == "meeting.md"
    assert "Thursday" in documents[0].page_content


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


def test_milvus_reads_listings_larger_than_one_query(tmp_path: Path, notes: Path, embedder, monkeypatch) -> None:
    """Milvus returns at most 16,384 rows a query: longer listings are read in key ranges (here with a limit of 2)."""
    from index import milvus_store

    location = location_in(tmp_path, "milvus-lite")
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    store = open_store(location)
    everything = (sorted(store.document_hashes()), sorted(store.rows_for_documents(store.document_hashes())))
    monkeypatch.setattr(milvus_store, "SEARCH_LIMIT", 1)
    assert (sorted(store.document_hashes()), sorted(store.rows_for_documents(store.document_hashes()))) == everything
    assert len(everything[0]) == 3 and len(everything[1]) >= 3
    store.close()


@pytest.mark.slow
def test_cli_adds_reports_searches_and_answers_on_milvus_lite(tmp_path: Path, notes: Path) -> None:
    """The README's commands on a Milvus Lite index, each in its own process (Lite reopens the file each time)."""
    location = location_in(tmp_path, "milvus-lite")
    added = rag_command("add", str(notes), "--index", location, "--quiet")
    assert "added 3" in added.stderr
    status = json.loads(rag_command("status", "--index", location, "--json").stdout)
    assert (status["documents"], status["store"]) == (3, "Milvus Lite") and status["chunks"] >= 3
    found = json.loads(rag_command("search", "backoff limit", "--index", location, "--json", "-k", "1").stdout)
    assert Path(found[0]["source"]).name == "retries.md"
    answer = json.loads(rag_command("ask", "When is the planning meeting?", "--index", location, "--json").stdout)
    assert "Thursday" in answer["text"] and answer["citations"]
    again = rag_command("add", str(notes), "--index", location, "--quiet")
    assert "unchanged 3" in again.stderr and "0 chunks embedded" in again.stderr


def test_a_malformed_milvus_uri_is_refused_with_the_form_to_use(tmp_path: Path) -> None:
    result = rag_command("status", "--index", "milvus://relative/file.db", check=False)
    assert result.returncode == 1
    assert "milvus://host:19530/collection" in result.stderr or "milvus:///absolute/path/file.db" in result.stderr


def test_without_the_milvus_extra_a_milvus_index_names_the_extra(monkeypatch) -> None:
    import sys

    from index.store import IndexStoreError

    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(IndexStoreError, match=r'pip install "rag-assistant\[milvus\]"'):
        open_store("milvus:///tmp/no-extra/index.db")


def test_a_milvus_lite_file_another_process_holds_is_refused_with_why(tmp_path: Path) -> None:
    """Milvus Lite serves one process per file: the second gets one line saying so, not Lite's traceback."""
    import subprocess
    import sys

    from index.store import IndexStoreError

    location = location_in(tmp_path, "milvus-lite")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"""
import sys, time
from index.store import IndexSettings
from index.stores import create_store
create_store({location!r}, IndexSettings(embedding_model="toy", dimension=2))
print("holding", flush=True)
time.sleep(120)
"""],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(IndexStoreError, match="another process has this Milvus Lite file open"):
            open_store(location)
    finally:
        holder.kill()
        holder.wait()
