"""`rag add` killed with SIGKILL at 20 points spread evenly over a real ingest (issue 10).

The index already holds saved derived files when the ingest starts (so every kill lands after the
first save, and the last ones during the final save), and the killed run resumes each time from
what the previous one committed. After every kill: SQLite's integrity check, the status `rag status`
shows, and a search in every mode that finds a committed note. At the end the index equals a clean
build of the same files: the same documents and chunks, and the same results in every mode.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.ingest import add_to_index
from index.store import IndexStore, read_status
from rag.retrieval.retriever import Retriever
from tests.conftest import REPO_ROOT, rag_command

pytestmark = pytest.mark.slow

NOTES = 320
ALREADY_INDEXED = 64
KILL_POINTS = 20
COMMIT_EVERY = "8"  # chunks a transaction: 32 commits in the killed ingest, so 20 points fall between distinct ones
WORDS = (
    "river mountain copper violin harbor lantern orchard glacier meadow falcon engine quartz "
    "canyon pepper saddle timber marble velvet comet island walnut beacon thunder prairie"
).split()
QUERIES = ["the copper violin near the harbor", "a falcon and a glacier", "note 300 describes", "day 17 marble"]


def _note(number: int) -> str:
    words = np.random.default_rng(number).choice(WORDS, size=3, replace=False)
    return (
        f"Note {number} describes the {words[0]} near the {words[1]}. "
        f"It was written on day {number % 31 + 1} and mentions a {words[2]}."
    )


def _write_notes(folder: Path, numbers: range) -> None:
    folder.mkdir(exist_ok=True)
    for number in numbers:
        (folder / f"note-{number:04d}.txt").write_text(_note(number))


def _committed_chunks(index_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index_dir / 'store.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill_when_committed(index_dir: Path, corpus: Path, target: int) -> bool:
    """Start `rag add`, kill it with SIGKILL once ``target`` chunks are committed; False if it finished first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "add", str(corpus), "--index", str(index_dir), "--quiet"],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "RAG_COMMIT_EVERY_CHUNKS": COMMIT_EVERY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while _committed_chunks(index_dir) < target and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return killed


def _check_recovered(index_dir: Path, embedder) -> int:
    """What a user relies on after a crash; returns the documents committed."""
    with sqlite3.connect(index_dir / "store.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        committed = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    status = read_status(index_dir)  # what `rag status` prints
    assert status.documents == status.chunks == committed
    retriever = Retriever(IndexStore.open(index_dir), embedder)
    assert retriever.store.counts() == (committed, committed)
    newest = max(info.source for info in retriever.store.documents())
    number = int(Path(newest).stem.split("-")[1])
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search(_note(number), k=3, mode=mode)
        assert any(hit.source == newest for hit in hits), (mode, newest)
    retriever.store.close()
    return committed


def _snapshot(index_dir: Path, embedder) -> tuple:
    store = IndexStore.open(index_dir)
    documents = sorted((info.id, info.sha256) for info in store.documents())
    with sqlite3.connect(index_dir / "store.sqlite") as db:
        chunks = sorted(db.execute("SELECT id, document_id, start, end, text FROM chunks"))
    retriever = Retriever(store, embedder)
    results = {
        (query, mode): [Path(hit.source).name for hit in retriever.search(query, k=5, mode=mode)]
        for query in QUERIES
        for mode in ("dense", "bm25", "hybrid")
    }
    return documents, chunks, results


def test_rag_add_killed_at_20_points_recovers_each_time_and_ends_equal_to_a_clean_build(tmp_path, embedder):
    corpus, index_dir = tmp_path / "notes", tmp_path / "index"
    _write_notes(corpus, range(ALREADY_INDEXED))
    add_to_index(index_dir, [corpus], embedder=embedder, show_progress=False)  # saved: derived files on disk
    _write_notes(corpus, range(ALREADY_INDEXED, NOTES))

    killed = 0
    previous = ALREADY_INDEXED
    for point in range(1, KILL_POINTS + 1):
        target = ALREADY_INDEXED + math.ceil(point * (NOTES - ALREADY_INDEXED) / KILL_POINTS)
        killed += _kill_when_committed(index_dir, corpus, target)
        committed = _check_recovered(index_dir, embedder)
        assert committed >= previous  # nothing committed is ever lost
        previous = committed
    assert killed >= KILL_POINTS - 2, f"only {killed} of {KILL_POINTS} runs were killed before they finished"

    finish = rag_command("add", str(corpus), "--index", str(index_dir), "--quiet")
    assert f"unchanged {previous}" in finish.stderr
    clean = tmp_path / "clean"
    add_to_index(clean, [corpus], embedder=embedder, show_progress=False)
    assert _snapshot(index_dir, embedder) == _snapshot(clean, embedder)
    print(f"{killed} kills; committed before each: {previous} at the last")
