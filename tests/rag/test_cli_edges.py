"""The smaller items of issue 10 (item 7), as a user meets them on the command line."""

from __future__ import annotations

from pathlib import Path

from index.ingest import add_to_index
from index.store import IndexStore
from rag.retrieval.retriever import Retriever
from tests.conftest import rag_command


def test_rag_add_of_a_missing_path_says_so_and_creates_no_index(tmp_path: Path) -> None:
    result = rag_command("add", str(tmp_path / "nowhere"), "--index", str(tmp_path / "idx"), check=False)
    assert result.returncode == 1
    assert f"failed  {tmp_path / 'nowhere'}: no such file or directory" in result.stderr
    assert not (tmp_path / "idx").exists()


def test_an_empty_query_is_an_error_for_search_as_for_ask(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("")
    created = rag_command("add", str(tmp_path / "empty.txt"), "--index", str(tmp_path / "idx"), check=False)
    assert created.returncode == 1 and (tmp_path / "idx").is_dir()  # an index with no documents
    search = rag_command("search", "  ", "--index", str(tmp_path / "idx"), check=False)
    assert (search.returncode, search.stderr.strip()) == (1, "error: the query is empty")
    ask = rag_command("ask", "Anything in there?", "--index", str(tmp_path / "idx"), check=False)
    assert ask.returncode == 1 and f"{tmp_path / 'idx'} has no documents yet: add some first" in " ".join(ask.stderr.split())


def test_a_source_glob_matches_relative_to_the_folder_that_was_added(tmp_path: Path, embedder) -> None:
    for folder, text in (("python-tutorial", "Functions take default argument values."), ("nodejs-api", "Events fire once.")):
        (tmp_path / "corpus" / folder).mkdir(parents=True)
        (tmp_path / "corpus" / folder / "page.md").write_text(f"# Page\n\n{text}")
    add_to_index(tmp_path / "idx", [tmp_path / "corpus"], embedder=embedder, show_progress=False)
    retriever = Retriever(IndexStore.open(tmp_path / "idx"), embedder)

    found = retriever.search("argument values", k=5, sources=["python-tutorial/*"])

    assert [Path(p.source).parent.name for p in found] == ["python-tutorial"]
    assert retriever.search("events", k=5, sources=["*.md"])
    assert retriever.search("events", k=5, sources=[f"{tmp_path}/corpus/nodejs-api/*"])
    assert not retriever.search("events", k=5, sources=["/nodejs-api/*"])  # a leading / anchors at the root
