"""The shared functions under the CLI, the page, the HTTP API and the MCP server (rag.service), in-process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from index.store import IndexSettings, IndexStore
from rag import service
from rag.collection import open_collection
from rag.retrieval.retriever import Retriever


@pytest.fixture
def collection(notes_index_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A private, writable copy of the notes index, opened as the servers open it."""
    index_dir = tmp_path / "index"
    shutil.copytree(notes_index_dir, index_dir, ignore=shutil.ignore_patterns(".lock"))
    return open_collection(index_dir)


def test_default_k_is_the_assistants() -> None:
    from rag.answering.assistant import DEFAULT_K
    from rag.cli.ask import DEFAULT_K as CLI_DEFAULT_K

    assert service.DEFAULT_K == DEFAULT_K == CLI_DEFAULT_K


def test_importing_the_service_loads_no_answer_chain_model_or_web_framework() -> None:
    """What ``import rag.service`` adds to what the retriever already loads: no LangChain, torch or servers."""
    code = (
        "import sys, json; import rag.retrieval.retriever; before = set(sys.modules); import rag.service; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    added = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    heavy = ("torch", "langchain", "sentence_transformers", "fastapi", "starlette", "gradio", "mcp", "rag.answering")
    assert [name for name in added if name.startswith(heavy)] == []


def test_search_is_the_retrievers_and_refuses_an_empty_query(collection, notes_index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    passages = service.search(collection, "how is black tea made", k=2, mode="bm25")
    expected = Retriever.open(notes_index_dir).search("how is black tea made", k=2, mode="bm25")
    assert [p.to_dict() for p in passages] == [p.to_dict() for p in expected]
    with pytest.raises(ValueError, match="the query is empty"):
        service.search(collection, "  ")
    with pytest.raises(ValueError, match="mode must be one of"):
        service.search(collection, "tea", mode="fuzzy")


def test_an_empty_index_is_said_to_be_empty(tmp_path: Path, notes_index_dir: Path) -> None:
    settings = IndexStore.open(notes_index_dir).settings
    IndexStore.create(tmp_path / "empty", IndexSettings(settings.embedding_model, settings.dimension)).close()
    assistants = service.AssistantPool(service.extractive_only())
    with pytest.raises(service.EmptyIndexError, match="no documents yet"):
        service.ask(open_collection(tmp_path / "empty"), assistants, "Anything?")


def test_ask_answers_with_citations_and_limits_to_documents(collection) -> None:  # type: ignore[no-untyped-def]
    assistants = service.AssistantPool(service.extractive_only())
    answer = service.ask(collection, assistants, "When will the lighthouse work begin?", k=2)
    assert "March" in answer.text and answer.citations[0].source.endswith("harbour.txt")
    tea_id = next(info.id for info in service.list_documents(collection) if info.source.endswith("tea.txt"))
    limited = service.ask(collection, assistants, "When will the lighthouse work begin?", k=2, document_ids=[tea_id])
    assert {p.document_id for p in limited.passages} == {tea_id} and "March" not in limited.text


def test_adding_paths_reports_every_file(collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "bees.md").write_text("# Bees\n\nBees dance to tell the hive where the flowers are.\n")
    (folder / "empty.txt").write_text("")
    (folder / ".hidden.txt").write_text("secret")
    (folder / "data.xyz").write_text("?")
    result = service.add_paths(collection, [folder, tmp_path / "missing.md"])
    statuses = {Path(f.file).name: f.status for f in result.files}
    assert statuses == {
        ".hidden.txt": "skipped",
        "data.xyz": "skipped",
        "missing.md": "failed",
        "bees.md": "added",
        "empty.txt": "failed",
    }
    assert result.summary.startswith("added 1, updated 0, unchanged 0, removed 0, skipped 2, failed 2;")
    bees = next(f for f in result.files if f.status == "added")
    assert bees.document_id == str((folder / "bees.md").resolve())
    assert service.search(collection, "where are the flowers", k=1)[0].document_id == bees.document_id
    again = service.add_paths(collection, [folder / "bees.md"])
    assert [(f.status, f.line()) for f in again.files] == [("unchanged", f"unchanged {folder / 'bees.md'}")]


def test_removing_returns_what_was_there_and_the_uploaded_copy_goes(collection, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    note = tmp_path / "bees.md"
    note.write_text("# Bees\n\nBees dance.\n")
    uploaded = service.add_uploads(collection, [note]).files[0]
    assert uploaded.status == "added" and (collection.uploads_dir / "bees.md").is_file()
    removed = service.remove_documents(collection, [uploaded.document_id, "no-such-id"])
    assert [info.title for info in removed] == ["Bees"]
    assert not (collection.uploads_dir / "bees.md").exists() and note.is_file()
    assert service.remove_documents(collection, [uploaded.document_id]) == []
