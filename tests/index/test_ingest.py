"""Incremental ingestion: unchanged files are skipped, changed files replaced, vanished files pruned,
bad input reported without losing what was indexed, and model changes refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.chunking import ChunkerSettings
from index.ingest import add_to_index
from index.store import IndexStore, SettingsMismatchError
from rag.retrieval.retriever import Retriever

FACTS = {
    "volcano.md": "# Volcanoes\n\nMount Erebus in Antarctica holds a persistent lava lake.\n\n"
    "## Monitoring\n\nSeismometers around the crater record tremor every night.",
    "bakery.txt": "The bakery on Elm Street opens at six in the morning and sells rye bread.",
    "orbit.html": "<html><head><title>Orbits</title></head><body><h1>Orbits</h1>"
    "<p>A geostationary satellite circles the Earth once every sidereal day.</p></body></html>",
}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    return folder


def _add(index_dir: Path, paths: list[Path], embedder, **options):
    return add_to_index(index_dir, paths, embedder=embedder, show_progress=False, **options)


def _top_source(index_dir: Path, embedder, query: str, mode: str = "dense") -> str:
    return Path(Retriever(IndexStore.open(index_dir), embedder).search(query, k=1, mode=mode)[0].source).name


def test_first_add_indexes_every_file_with_its_metadata(tmp_path, corpus, embedder):
    report = _add(tmp_path / "idx", [corpus], embedder)
    assert (report.added, report.failed, report.skipped) == (3, [], [])
    store = IndexStore.open(tmp_path / "idx")
    titles = {Path(d.source).name: d.title for d in store.documents()}
    assert titles == {"volcano.md": "Volcanoes", "bakery.txt": "bakery", "orbit.html": "Orbits"}
    assert _top_source(tmp_path / "idx", embedder, "Which volcano has a lava lake?") == "volcano.md"


def test_unchanged_file_is_not_reembedded(tmp_path, corpus, embedder):
    first = _add(tmp_path / "idx", [corpus], embedder)
    second = _add(tmp_path / "idx", [corpus], embedder)
    assert first.chunks_embedded > 0
    assert (second.unchanged, second.added, second.updated, second.chunks_embedded) == (3, 0, 0, 0)


def test_changed_file_replaces_only_its_chunks(tmp_path, corpus, embedder):
    _add(tmp_path / "idx", [corpus], embedder)
    store = IndexStore.open(tmp_path / "idx")
    before = {c.chunk.id for c in store.get_chunks(list(range(1, 100))).values()}
    store.close()
    volcano = corpus / "volcano.md"
    volcano.write_text(volcano.read_text().replace("every night", "every single hour"))

    report = _add(tmp_path / "idx", [corpus], embedder)

    assert (report.updated, report.unchanged) == (1, 2)
    assert report.chunks_embedded == 1  # only the "Monitoring" section changed
    assert report.chunks_reused >= 1
    store = IndexStore.open(tmp_path / "idx")
    after = {c.chunk.id: c.chunk.text for c in store.get_chunks(list(range(1, 100))).values()}
    assert any("every single hour" in text for text in after.values())
    assert not any("every night" in text for text in after.values())
    assert len(before & set(after)) == len(after) - 1  # every other chunk kept its id


def test_prune_removes_a_deleted_file_from_search(tmp_path, corpus, embedder):
    _add(tmp_path / "idx", [corpus], embedder)
    (corpus / "bakery.txt").unlink()

    without_prune = _add(tmp_path / "idx", [corpus], embedder)
    assert without_prune.removed == 0
    with_prune = _add(tmp_path / "idx", [corpus], embedder, prune=True)

    assert with_prune.removed == 1
    retriever = Retriever(IndexStore.open(tmp_path / "idx"), embedder)
    for mode in ("dense", "bm25"):
        sources = {Path(p.source).name for p in retriever.search("bakery rye bread", k=10, mode=mode)}
        assert "bakery.txt" not in sources


def test_other_model_is_refused_with_a_clear_message(tmp_path, corpus, embedder):
    _add(tmp_path / "idx", [corpus], embedder)
    with pytest.raises(SettingsMismatchError, match="built with embedding model 'all-MiniLM-L6-v2'.*--rebuild"):
        add_to_index(tmp_path / "idx", [corpus], model="/some/other/model", show_progress=False)


def test_rebuild_rechunks_everything_and_keeps_documents(tmp_path, corpus, embedder):
    _add(tmp_path / "idx", [corpus], embedder)
    _add(tmp_path / "idx", [corpus], embedder, chunker=ChunkerSettings(24, 4), rebuild=True)
    store = IndexStore.open(tmp_path / "idx")
    assert store.settings.chunker == ChunkerSettings(24, 4)
    assert store.counts()[0] == 3
    assert _top_source(tmp_path / "idx", embedder, "geostationary satellite") == "orbit.html"
    assert not list(tmp_path.glob(".idx.*")), "staging folders must be cleaned up"


def test_rebuild_keeps_what_others_keep_in_the_index_folder(tmp_path, corpus, embedder):
    """Regression: a rebuild swapped in a fresh folder, losing uploads and the chat page's feedback."""
    _add(tmp_path / "idx", [corpus], embedder)
    (tmp_path / "idx" / "chat.sqlite").write_bytes(b"feedback")
    (tmp_path / "idx" / "uploads").mkdir()
    (tmp_path / "idx" / "uploads" / "note.md").write_text("# Note\n")
    _add(tmp_path / "idx", [corpus / "bakery.txt"], embedder, chunker=ChunkerSettings(24, 4), rebuild=True)
    assert (tmp_path / "idx" / "chat.sqlite").read_bytes() == b"feedback"
    assert (tmp_path / "idx" / "uploads" / "note.md").is_file()
    assert IndexStore.open(tmp_path / "idx").added_folders() == [str(corpus.resolve())]


def test_chunks_stay_within_the_model_token_limit(tmp_path, embedder):
    """Regression: token counts were all 128 because the tokenizer padded and truncated."""
    long_text = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(400))
    (tmp_path / "long.txt").write_text(long_text)
    _add(tmp_path / "idx", [tmp_path / "long.txt"], embedder)
    store = IndexStore.open(tmp_path / "idx")
    chunks = [c.chunk for c in store.get_chunks(list(range(1, 1000))).values()]
    document = store.get_document(chunks[0].document_id)
    counts = [c.token_count for c in chunks]
    assert max(counts) <= 200 and len(set(counts)) > 1
    assert all(embedder.count_tokens(c.text) == c.token_count for c in chunks)
    assert all(document.text[c.start : c.end] == c.text for c in chunks)
    covered = "".join(document.text[c.start : c.end] for c in chunks)
    assert "Sentence number 399" in covered


def test_bad_inputs_are_reported_and_nothing_indexed_is_lost(tmp_path, corpus, embedder):
    _add(tmp_path / "idx", [corpus], embedder)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_text("")
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf")
    (bad / "latin1.txt").write_bytes("Café crème at the Brasserie costs four euros.".encode("cp1252"))
    (corpus / "bakery.txt").write_bytes(b"\x00\x01\x02" * 100)  # a once-good file, now garbage

    report = _add(tmp_path / "idx", [corpus, bad, tmp_path / "missing.md"], embedder, prune=True)

    reasons = {Path(error.path).name: error.reason for error in report.failed}
    assert reasons["empty.txt"] == "empty file (no text)"
    assert reasons["binary.txt"] == "binary data, not text"
    assert reasons["broken.pdf"].startswith("corrupt or unreadable PDF")
    assert reasons["missing.md"] == "no such file or directory"
    assert reasons["bakery.txt"] == "binary data, not text"
    assert all(str(error).startswith(str(error.path)) for error in report.failed)
    assert report.added == 1  # the cp1252 file was decoded, not refused
    assert report.removed == 0  # a file that failed to load is not pruned
    assert not report.nothing_added
    assert _top_source(tmp_path / "idx", embedder, "When does the bakery open?") == "bakery.txt"
    assert _top_source(tmp_path / "idx", embedder, "Café crème price", mode="bm25") == "latin1.txt"


def test_run_where_nothing_can_be_added_is_flagged(tmp_path, embedder):
    (tmp_path / "empty.md").write_text("   \n")
    report = _add(tmp_path / "idx", [tmp_path / "empty.md"], embedder)
    assert report.nothing_added


def test_bm25_sees_the_heading_path_of_a_later_chunk(tmp_path, corpus, embedder):
    """Regression: BM25 indexed bare chunk text, so a section lost its document's title and headings."""
    _add(tmp_path / "idx", [corpus], embedder)
    store = IndexStore.open(tmp_path / "idx")
    top = store.search_bm25("volcanoes tremor", k=1)[0][0]
    assert top.chunk.heading == "Volcanoes > Monitoring" and "tremor" in top.chunk.text


def test_an_index_of_an_older_format_is_refused_until_rebuilt_and_the_rebuild_reads_the_files_again(
    tmp_path, embedder
):
    """Format 3 stores classified blocks: an older index says how to rebuild, and the rebuild classifies.

    The old store is changed through SQLite (its write-ahead log): the rebuild once carried that log
    into the new folder, where SQLite replayed it over the new store."""
    import json
    import sqlite3

    from index.store import IndexStoreError

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "guide.md").write_text("# Guide\n\nInstall it like this:\n\n```sh\npip install thing\n```\n")
    index_dir = tmp_path / "index"
    add_to_index(index_dir, [notes], embedder=embedder, show_progress=False)
    # Make it look like a format-2 index: no blocks stored, older version number.
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["format_version"] = 2
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with sqlite3.connect(index_dir / "store.sqlite") as db:
        db.execute("UPDATE chunks SET blocks = '[]'")
        db.execute("UPDATE documents SET blocks = '[]'")
    with pytest.raises(IndexStoreError, match=r"older version .* `rag add PATH --rebuild --index"):
        IndexStore.open(index_dir)
    add_to_index(index_dir, [notes], embedder=embedder, rebuild=True, show_progress=False)
    store = IndexStore.open(index_dir)
    [chunk] = store.get_chunks(list(store.rows_for_documents([str((notes / "guide.md").resolve())]))).values()
    assert [kind for _, _, kind in chunk.chunk.blocks] == ["heading", "prose", "code"]
