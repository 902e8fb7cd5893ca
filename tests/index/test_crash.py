"""A `rag add` killed with SIGKILL part-way leaves an index that opens, searches, and finishes on re-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from index.store import IndexStore
from tests.conftest import REPO_ROOT, rag_command

FILE_COUNT = 400
WORDS = (
    "river mountain copper violin harbor lantern orchard glacier meadow falcon engine quartz "
    "canyon pepper saddle timber marble velvet comet island walnut beacon thunder prairie"
).split()


def _write_corpus(folder: Path) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for number in range(FILE_COUNT):
        words = rng.choice(WORDS, size=3, replace=False)
        text = (
            f"Note {number} describes the {words[0]} near the {words[1]}. "
            f"It was written on day {number % 31 + 1} and mentions a {words[2]}."
        )
        (folder / f"note-{number:04d}.txt").write_text(text)


def _committed_chunks(index_dir: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index_dir / 'store.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_killed_ingest_leaves_searchable_index_and_rerun_finishes(tmp_path):
    corpus, index_dir = tmp_path / "notes", tmp_path / "idx"
    _write_corpus(corpus)
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "add", str(corpus), "--index", str(index_dir), "--quiet"],
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while _committed_chunks(index_dir) < 128 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the ingest finished before it could be killed: make the corpus larger"
    process.send_signal(signal.SIGKILL)
    process.wait()

    store = IndexStore.open(index_dir)
    documents, chunks = store.counts()
    assert 128 <= chunks < FILE_COUNT and documents == chunks  # one chunk per note
    assert store.search_bm25("Note 3 describes", k=1)  # the derived files were rebuilt on open
    store.close()
    hits = json.loads(rag_command("search", "Note 0 describes the", "--index", str(index_dir), "--json", "-k", "3").stdout)
    assert hits and all(hit["source"].endswith(".txt") for hit in hits)

    finish = rag_command("add", str(corpus), "--index", str(index_dir), "--quiet")
    assert f"added {FILE_COUNT - documents}, updated 0, unchanged {documents}" in finish.stderr
    store = IndexStore.open(index_dir)
    assert store.counts() == (FILE_COUNT, FILE_COUNT)
    top = store.search_bm25("note 399", k=1)[0][0]
    assert top.source.endswith("note-0399.txt")
