"""A long-lived index instance never saves derived files that lack another process's chunks (issue 10, item 2).

The other writer is a real `rag add` in another process. Before the fix, a Retriever opened before
that add and then asked to delete (even an unknown id) saved FAISS and BM25 files stamped current
but without the other process's chunks: no search mode found them, and a later `rag add` did not
repair it. ``add_to_index`` had the same gap between opening the index and taking the write lock.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from index.ingest import Ingestor, add_to_index
from index.store import VECTORS_STAMP_NAME, IndexStore
from rag.retrieval.retriever import Retriever
from tests.conftest import rag_command

FIRST = "The lighthouse on the northern cape was automated in 1987."
SECOND = "Penguins of the southern colony molt their feathers every spring."
THIRD = "The observatory dome opens only on cloudless winter nights."


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _found_in_every_mode(index_dir: Path, embedder, query: str, name: str) -> dict[str, bool]:
    """Whether a freshly opened index finds ``name`` first for ``query`` in each mode."""
    retriever = Retriever(IndexStore.open(index_dir), embedder)
    return {
        mode: bool(hits) and Path(hits[0].source).name == name
        for mode in ("dense", "bm25", "hybrid")
        for hits in [retriever.search(query, k=1, mode=mode)]
    }


def test_delete_from_a_retriever_opened_before_another_process_added_keeps_its_chunks(tmp_path, embedder):
    index_dir = tmp_path / "idx"
    add_to_index(index_dir, [_write(tmp_path / "a", "lighthouse.txt", FIRST)], embedder=embedder, show_progress=False)
    long_lived = Retriever(IndexStore.open(index_dir), embedder)

    rag_command("add", str(_write(tmp_path / "b", "penguins.txt", SECOND)), "--index", str(index_dir), "--quiet")
    assert long_lived.delete(["no-such-document"]) == 0

    assert _found_in_every_mode(index_dir, embedder, "When do penguins molt?", "penguins.txt") == {
        "dense": True, "bm25": True, "hybrid": True,
    }
    stamp = json.loads((index_dir / VECTORS_STAMP_NAME).read_text())
    assert stamp["count"] == 2 and stamp["generation"] == IndexStore.open(index_dir).generation
    # and the long-lived instance itself now sees the other process's chunks
    assert Path(long_lived.search("When do penguins molt?", k=1, mode="bm25")[0].source).name == "penguins.txt"


def test_an_add_that_opened_the_index_before_another_process_wrote_keeps_both(tmp_path, embedder):
    """What add_to_index does: open, then take the lock; another process commits in between."""
    index_dir = tmp_path / "idx"
    add_to_index(index_dir, [_write(tmp_path / "a", "lighthouse.txt", FIRST)], embedder=embedder, show_progress=False)
    store = IndexStore.open(index_dir)

    rag_command("add", str(_write(tmp_path / "b", "penguins.txt", SECOND)), "--index", str(index_dir), "--quiet")
    with store.writer_lock():
        Ingestor(store, embedder, show_progress=False).add([_write(tmp_path / "c", "observatory.txt", THIRD)])

    for query, name in (("When do penguins molt?", "penguins.txt"), ("When does the observatory dome open?", "observatory.txt")):
        assert _found_in_every_mode(index_dir, embedder, query, name) == {"dense": True, "bm25": True, "hybrid": True}
    assert IndexStore.open(index_dir).counts() == (3, 3)


def test_derived_files_stamped_current_but_missing_chunks_are_rebuilt_on_open(tmp_path, embedder):
    """Indexes damaged by the old code carry a current stamp over files that lack chunks: they are repaired."""
    index_dir = tmp_path / "idx"
    add_to_index(index_dir, [_write(tmp_path / "a", "lighthouse.txt", FIRST)], embedder=embedder, show_progress=False)
    stale = IndexStore.open(index_dir)
    add_to_index(index_dir, [_write(tmp_path / "b", "penguins.txt", SECOND)], embedder=embedder, show_progress=False)
    # What the old save did from a stale view: write its files, stamped with the store's generation.
    stale._vectors.save(index_dir / "vectors.faiss")
    stale._bm25.save(index_dir)
    stamp = json.loads((index_dir / VECTORS_STAMP_NAME).read_text())
    (index_dir / VECTORS_STAMP_NAME).write_text(json.dumps({**stamp, "count": 1}))

    reopened = IndexStore.open(index_dir)
    assert reopened.search_bm25("penguins molt", k=1)[0][0].source.endswith("penguins.txt")
    hits = reopened.search_dense(embedder.embed_query("When do penguins molt?"), k=1)
    assert hits[0][0].source.endswith("penguins.txt")
    assert np.isclose(json.loads((index_dir / VECTORS_STAMP_NAME).read_text())["count"], 2)
