"""Document ids from different sources never overwrite each other (issue 10, item 3).

A file's id is its absolute path and a ``.jsonl`` record keeps its corpus's id (the evaluations
need those ids), so a record whose id is another file's path used to replace that file's
document, and the other way round. Now the later one is refused, naming both sources.
"""

from __future__ import annotations

import json
from pathlib import Path

from index.ingest import add_to_index
from index.store import IndexStore


def _add(index_dir: Path, paths: list[Path], embedder):
    return add_to_index(index_dir, paths, embedder=embedder, show_progress=False)


def _corpus(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"_id": doc_id, "text": text}) + "\n" for doc_id, text in records))
    return path


def test_a_record_named_like_an_indexed_file_is_refused(tmp_path: Path, embedder) -> None:
    note = tmp_path / "note.txt"
    note.write_text("The ferry leaves the harbour at dawn.")
    _add(tmp_path / "idx", [note], embedder)
    corpus = _corpus(tmp_path / "corpus.jsonl", [(str(note), "An impostor record."), ("r2", "A fine record.")])

    report = _add(tmp_path / "idx", [corpus], embedder)

    assert [str(error) for error in report.failed] == [
        (
            f"{corpus}: line 1: document id {str(note)!r} is already used by {note}; not indexed "
            "(ids must be unique across sources: rename the record or remove the other document)"
        )
    ]
    assert report.added == 1
    store = IndexStore.open(tmp_path / "idx")
    assert store.get_document(str(note)).text == "The ferry leaves the harbour at dawn."
    assert store.get_document("r2").source == str(corpus)


def test_a_file_whose_path_is_an_indexed_record_id_is_refused(tmp_path: Path, embedder) -> None:
    note = tmp_path / "note.txt"
    corpus = _corpus(tmp_path / "corpus.jsonl", [(str(note), "The record came first.")])
    _add(tmp_path / "idx", [corpus], embedder)
    note.write_text("The file came second.")

    report = _add(tmp_path / "idx", [note, corpus], embedder)

    assert [error.reason for error in report.failed] == [
        (
            f"document id {str(note)!r} is already used by {corpus}; not indexed "
            "(ids must be unique across sources: rename the record or remove the other document)"
        )
    ]
    assert report.unchanged == 1
    store = IndexStore.open(tmp_path / "idx")
    assert store.get_document(str(note)).text == "The record came first."


def test_two_corpora_sharing_an_id_in_one_run_keep_the_first(tmp_path: Path, embedder) -> None:
    first = _corpus(tmp_path / "a.jsonl", [("42", "The first corpus holds the answer.")])
    second = _corpus(tmp_path / "b.jsonl", [("42", "The second corpus reuses the id."), ("43", "And adds one.")])

    report = _add(tmp_path / "idx", [first, second], embedder)

    assert [error.reason for error in report.failed] == [
        (
            "line 1: document id '42' is already used by "
            f"{first}; not indexed (ids must be unique across sources: rename the record or remove the other document)"
        )
    ]
    assert report.added == 2
    again = _add(tmp_path / "idx", [first, second], embedder)
    assert (again.added, again.unchanged, len(again.failed)) == (0, 2, 1)
    store = IndexStore.open(tmp_path / "idx")
    assert store.get_document("42").source == str(first)
