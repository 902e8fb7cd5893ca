"""``rag add --rebuild`` on Milvus, interrupted at each step of putting the new index in the old one's place.

Milvus has no transaction over dropping and renaming collections, so the swap can stop half done (a crash,
a killed process, a lost connection). Whatever step it stopped at, the next open must find the whole
index, rebuilt, and a later rebuild must work. The interruption is an exception raised by the client at
that step, on a real Milvus Lite file with the packaged model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from index.ingest import add_to_index
from index.stores import read_store_status
from rag import Retriever

pymilvus = pytest.importorskip("pymilvus", reason='the Milvus backend needs the milvus extra: pip install -e ".[milvus]"')

SWAP_STEPS = ["before the old chunks are dropped", "after they are", "after the old documents are", "after the new chunks are renamed"]


class Interrupted(RuntimeError):
    """Stands for the crash."""


@pytest.mark.parametrize("step", range(len(SWAP_STEPS)), ids=SWAP_STEPS)
def test_an_interrupted_rebuild_is_finished_by_the_next_open(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "garden.txt").write_text("Tomatoes need six hours of direct sunlight and deep watering twice a week.\n")
    (notes / "meeting.md").write_text("# Meeting\n\nThe quarterly planning meeting moved to Thursday at noon.\n")
    location = f"milvus://{tmp_path / 'index.db'}"
    add_to_index(location, [notes], embedder=embedder, show_progress=False)
    before = read_store_status(location)

    calls = {"done": 0}
    for name in ("drop_collection", "rename_collection"):
        original = getattr(pymilvus.MilvusClient, name)

        def interrupting(self, *args, _original=original, **kwargs):
            if calls["done"] == step:
                raise Interrupted(f"stopped {SWAP_STEPS[step]}")
            calls["done"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(pymilvus.MilvusClient, name, interrupting)
    with pytest.raises(Interrupted):
        add_to_index(location, [], rebuild=True, embedder=embedder, show_progress=False)
    monkeypatch.undo()

    after = read_store_status(location)
    assert (after.documents, after.chunks) == (before.documents, before.chunks)
    sources = {Path(passage.source).name for passage in Retriever.open(location).search("tomatoes sunlight", k=1)}
    assert sources == {"garden.txt"}
    report = add_to_index(location, [], rebuild=True, embedder=embedder, show_progress=False)  # and again, whole
    assert report.chunks_embedded == before.chunks
    assert read_store_status(location).documents == before.documents
