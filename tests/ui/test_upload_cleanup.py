"""Uploaded files do not stay in Gradio's temporary folder once they are indexed (issue 10, item 7)."""

from __future__ import annotations

from pathlib import Path

from ui.collections import CollectionManager
from ui.library import LibraryHandlers


class _NoProgress:
    def __call__(self, *args: object, **kwargs: object) -> None:
        pass


def test_the_temporary_copies_of_uploads_are_deleted_after_indexing(notes_root: Path, tmp_path: Path) -> None:
    manager = CollectionManager(notes_root, notes_root / "notes")
    gradio_temp = tmp_path / "gradio" / "3f2a9c"  # Gradio keeps each upload in a folder of its own
    gradio_temp.mkdir(parents=True)
    good = gradio_temp / "bees.md"
    good.write_text("# Bees\n\nBees dance to tell the hive where the flowers are.\n")
    bad = tmp_path / "gradio" / "empty.txt"
    bad.write_text("")

    summary, *_ = LibraryHandlers(manager).upload([str(good), str(bad)], str(manager.default_dir), _NoProgress())

    assert "1 added" in summary
    assert not good.exists() and not gradio_temp.exists() and not bad.exists()
    assert (manager.get().uploads_dir / "bees.md").is_file()
