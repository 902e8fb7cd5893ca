"""An index records its embedder; what happens when it is searched or extended with the other one (README:
"Which embedder an index uses")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index.ingest import add_to_index
from index.store import MANIFEST_NAME, IndexStore, SettingsMismatchError
from rag.retrieval.retriever import Retriever
from tests.conftest import REPO_ROOT, rag_command

DOCS = REPO_ROOT / "docs"
QUERIES = [
    "How do I add files to the index?",
    "remove documents whose files are gone",
    "Which file formats can be indexed?",
    "How are citations checked?",
    "the chat page login",
]


@pytest.fixture(scope="module")
def torch_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("torch") / "index"
    add_to_index(index_dir, [DOCS], embedder_kind="torch", show_progress=False)
    return index_dir


def _copy(index_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(index_dir, tmp_path / "copy"))


def test_the_manifest_and_status_record_the_embedder(torch_index: Path) -> None:
    settings = json.loads((torch_index / MANIFEST_NAME).read_text())["settings"]
    assert (settings["embedder"], settings["precision"]) == ("torch", "fp32")
    status = json.loads(rag_command("status", "--index", str(torch_index), "--json").stdout)
    assert status["embedder"] == "torch"


def test_an_index_is_searched_with_the_embedder_that_built_it(torch_index: Path) -> None:
    assert Retriever.open(torch_index).embedder.kind == "torch"


def test_a_torch_index_searched_with_int8_query_vectors_ranks_as_torch_does(torch_index: Path) -> None:
    with_torch = Retriever.open(torch_index)
    with_int8 = Retriever.open(torch_index, embedder_kind="onnx-int8")
    assert with_int8.embedder.kind == "onnx-int8"
    for query in QUERIES:
        expected = with_torch.search(query, k=3, mode="dense")
        found = with_int8.search(query, k=3, mode="dense")
        assert found[0].chunk_id == expected[0].chunk_id, query
        assert found[0].score == pytest.approx(expected[0].score, abs=0.02)
        hybrid = [p.chunk_id for p in with_int8.search(query, k=5)]
        assert hybrid[0] == with_torch.search(query, k=5)[0].chunk_id, query


def test_adding_with_another_embedder_is_refused_and_changes_nothing(torch_index: Path, tmp_path: Path) -> None:
    index_dir = _copy(torch_index, tmp_path)
    before = IndexStore.open(index_dir).counts()
    note = tmp_path / "note.txt"
    note.write_text("The lighthouse on the north pier will be rebuilt in March.")
    with pytest.raises(SettingsMismatchError, match="embedded with torch, not onnx-int8"):
        add_to_index(index_dir, [note], embedder_kind="onnx-int8", show_progress=False)
    # A retriever that searches with another embedder cannot add with it either.
    with pytest.raises(SettingsMismatchError, match="one index keeps one embedder's vectors"):
        Retriever.open(index_dir, embedder_kind="onnx-int8").add([note])
    assert IndexStore.open(index_dir).counts() == before
    result = rag_command("add", str(note), "--index", str(index_dir), "--embedder", "onnx-int8", check=False)
    assert result.returncode == 1 and "--rebuild" in result.stderr


def test_rebuild_re_embeds_everything_with_the_new_embedder(torch_index: Path, tmp_path: Path) -> None:
    index_dir = _copy(torch_index, tmp_path)
    documents, chunks = IndexStore.open(index_dir).counts()
    report = add_to_index(index_dir, [], embedder_kind="onnx-int8", rebuild=True, show_progress=False)
    assert report.chunks_embedded == chunks
    store = IndexStore.open(index_dir)
    assert store.settings.embedder_kind == "onnx-int8" and store.counts() == (documents, chunks)
    assert Retriever.open(index_dir).search(QUERIES[0], k=1)[0].source.endswith("adding-documents.md")


def test_an_index_from_before_embedders_were_recorded_opens_as_torch(torch_index: Path, tmp_path: Path) -> None:
    index_dir = _copy(torch_index, tmp_path)
    manifest = json.loads((index_dir / MANIFEST_NAME).read_text())
    for key in ("embedder", "precision"):
        del manifest["settings"][key]
    (index_dir / MANIFEST_NAME).write_text(json.dumps(manifest))
    assert IndexStore.open(index_dir).settings.embedder_kind == "torch"


def test_an_unknown_embedder_is_a_one_line_error(tmp_path: Path) -> None:
    result = rag_command("add", str(DOCS), "--index", str(tmp_path / "i"), "--embedder", "tflite", check=False)
    assert result.returncode == 1
    assert "embedder must be one of onnx-int8, onnx-fp32, torch" in result.stderr
