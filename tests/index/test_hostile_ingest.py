"""`rag add` over hostile files (issue 10): each bad file is one line of the report, the run goes on,
and nothing already indexed is lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from index import loaders
from index.ingest import add_to_index
from index.store import IndexStore
from tests.conftest import rag_command

GOOD = {
    "volcano.md": "# Volcanoes\n\nMount Erebus in Antarctica holds a persistent lava lake.",
    "bakery.txt": "The bakery on Elm Street opens at six in the morning and sells rye bread.",
}


def _issue_inputs(folder: Path) -> None:
    """The four inputs of issue 10, item 1, that aborted a whole run."""
    (folder / "huge-id.jsonl").write_text(
        '{"_id": ' + "4" * 5_000 + ', "title": "Huge id", "text": "A record whose id has five thousand digits."}\n'
    )
    (folder / "nested.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    (folder / "deep.html").write_text(
        "<html><body>" + "<div>" * 10_000 + "<p>The lighthouse keeper lives at the bottom of the divs.</p>"
    )
    (folder / os.fsdecode(b"caf\xe9-menu.txt")).write_bytes("The caf\u00e9 serves lentil soup on Mondays.".encode())


def test_rag_add_reports_each_hostile_file_and_indexes_everything_else(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in GOOD.items():
        (docs / name).write_text(text)
    _issue_inputs(docs)
    index_dir = tmp_path / "index"

    result = rag_command("add", str(docs), "--index", str(index_dir), "--quiet", check=False)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert failed == [f"failed  {docs / 'nested.jsonl'}: line 1: JSON nested too deeply"]
    assert "added 5, updated 0, unchanged 0, removed 0, skipped 0, failed 1" in result.stderr

    found = json.loads(rag_command("search", "lentil soup", "--index", str(index_dir), "--json", "-k", "1").stdout)
    assert found[0]["source"] == f"{docs.resolve()}/caf\\xe9-menu.txt"
    found = json.loads(rag_command("search", "lighthouse keeper", "--index", str(index_dir), "--json", "-k", "1").stdout)
    assert found[0]["source"].endswith("deep.html")

    again = rag_command("add", str(docs), "--index", str(index_dir), "--quiet", "--prune", check=False)
    assert "added 0, updated 0, unchanged 5, removed 0, skipped 0, failed 1" in again.stderr


def test_an_unexpected_error_in_a_loader_is_one_line_with_its_type(tmp_path: Path, embedder, monkeypatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in GOOD.items():
        (docs / name).write_text(text)
    add_to_index(tmp_path / "index", [docs], embedder=embedder, show_progress=False)
    (docs / "boom.md").write_text("# Boom\n")
    real_loader = loaders._LOADERS[".md"]

    def exploding_loader(path: Path, raw: bytes, modified: float):
        if path.name == "boom.md":
            raise ZeroDivisionError("division by zero\n in a loader")
        return real_loader(path, raw, modified)

    monkeypatch.setitem(loaders._LOADERS, ".md", exploding_loader)
    (docs / "bakery.txt").write_text("The bakery on Elm Street now opens at seven.")

    report = add_to_index(tmp_path / "index", [docs], embedder=embedder, show_progress=False, prune=True)

    [error] = report.failed
    assert str(error) == f"{docs / 'boom.md'}: could not be loaded (ZeroDivisionError: division by zero in a loader)"
    assert (report.updated, report.unchanged, report.removed) == (1, 1, 0)
    store = IndexStore.open(tmp_path / "index")
    assert store.counts()[0] == 2
    assert "seven" in store.search_bm25("bakery opens", k=1)[0][0].chunk.text


@pytest.mark.parametrize("bad_name", [b"\xff\xfe.md", b"caf\xe9.html"])
def test_file_names_that_are_not_utf8_are_indexed_updated_and_pruned(tmp_path: Path, embedder, bad_name) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / os.fsdecode(bad_name)
    path.write_text("<h1>Menu</h1><p>Soup of the day: lentils.</p>" if bad_name.endswith(b"html") else "# Menu\n\nLentils.")
    first = add_to_index(tmp_path / "index", [docs], embedder=embedder, show_progress=False)
    second = add_to_index(tmp_path / "index", [docs], embedder=embedder, show_progress=False, prune=True)
    path.unlink()
    third = add_to_index(tmp_path / "index", [docs], embedder=embedder, show_progress=False, prune=True)
    assert (first.added, second.unchanged, second.removed, third.removed) == (1, 1, 0, 1)
