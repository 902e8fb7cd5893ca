"""``rag chat``'s command function: its options, its errors, and the demo index of a first start."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ui import cli
from ui.cli import chat_command, parse_auth
from ui.examples import DEMO_EXAMPLES

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(chat_command)
    return app


def test_options_are_the_documented_ones_and_there_is_no_share() -> None:
    result = runner.invoke(_app(), ["--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in ("--index", "--host", "--port", "--auth", "--open", "--no-open", "RAG_AUTH", "127.0.0.1"):
        assert option in result.output
    assert "--share" not in result.output


def test_missing_index_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["--index", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no index here" in result.output


def test_bad_auth_from_the_environment_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(_app(), ["--index", str(tmp_path)], env={"RAG_AUTH": "just-a-user"})
    assert result.exit_code == 1 and "user:password" in result.output


def test_auth_keeps_colons_in_the_password() -> None:
    assert parse_auth("ada:pa:ss") == ("ada", "pa:ss")
    assert parse_auth(None) is None


def test_demo_docs_are_found_in_a_clone() -> None:
    docs = cli.find_demo_docs()
    assert docs is not None and (docs / "getting-started.md").is_file()


@pytest.mark.slow
def test_first_start_builds_the_demo_index_with_its_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index_dir = tmp_path / "data" / "default"
    monkeypatch.setenv("RAG_INDEX", str(index_dir))
    assert cli._resolve_index(None) == index_dir
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["documents"] >= 3
    assert json.loads((index_dir / "examples.json").read_text()) == list(DEMO_EXAMPLES)
    assert not list(index_dir.parent.glob(".*building"))  # built aside, then moved in place


def test_several_logins_from_options_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict = {}
    index_dir = tmp_path / "idx"
    monkeypatch.setattr(cli, "_resolve_index", lambda index: index_dir)
    monkeypatch.setattr("ui.collections.CollectionManager.get", lambda self, *a: None)
    monkeypatch.setattr("ui.app.build_app", lambda manager, backends: "demo")
    monkeypatch.setattr("ui.app.serve", lambda demo, **options: served.update(options))
    result = runner.invoke(_app(), ["--auth", "ada:one", "--auth", "bob:two:three"])
    assert result.exit_code == 0, result.output
    assert served["auth"] == [("ada", "one"), ("bob", "two:three")]
    result = runner.invoke(_app(), [], env={"RAG_AUTH": "ada:one bob:two"})
    assert result.exit_code == 0, result.output
    assert served["auth"] == [("ada", "one"), ("bob", "two")]
    result = runner.invoke(_app(), ["--auth", "ada:one", "--auth", "ada:two"])
    assert result.exit_code == 1 and "ada more than once" in result.output


def test_demo_pages_from_a_deleted_clone_are_relinked_and_own_documents_kept(tmp_path: Path) -> None:
    """The default index is shared by every checkout: a demo built from a clone that was then deleted
    kept sources pointing into it (found when the page's source links led into a removed CI clone)."""
    from index.ingest import add_to_index
    from index.stores import open_store

    docs = cli.find_demo_docs()
    assert docs is not None
    old_clone = tmp_path / "old-clone" / "docs"
    shutil.copytree(docs, old_clone)
    own = tmp_path / "notes" / "plan.txt"
    own.parent.mkdir()
    own.write_text("The lighthouse keeper's plan for the winter: repaint the lamp room and log every storm.\n")
    index_dir = tmp_path / "default"
    add_to_index(index_dir, [old_clone, own], show_progress=False)
    shutil.rmtree(tmp_path / "old-clone")

    assert cli.relink_demo_docs(index_dir, docs) == len(list(docs.glob("*.md")))

    store = open_store(index_dir)
    try:
        sources = sorted(store.document_sources().values())
    finally:
        store.close()
    assert str(own.resolve()) in sources
    assert sorted(source for source in sources if source != str(own.resolve())) == sorted(
        str(page.resolve()) for page in docs.glob("*.md")
    )
    assert cli.relink_demo_docs(index_dir, docs) == 0  # nothing stale the second time
