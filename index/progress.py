"""Progress bars for ingestion (files read, chunks embedded, chunks/s, ETA), drawn on stderr."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class IngestProgress:
    """Two bars: reading files, then embedding chunks. Disabled, it does nothing."""

    def __init__(self, enabled: bool = True) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
        self._reading: TaskID | None = None
        self._embedding: TaskID | None = None

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_reading(self, file_count: int) -> None:
        if self._progress is not None:
            self._reading = self._progress.add_task("reading", total=file_count, unit="files", rate="")

    def reading(self, path: Path) -> None:
        if self._progress is not None and self._reading is not None:
            self._progress.update(self._reading, advance=1, unit=f"files  {path.name[:40]}")

    def start_embedding(self, chunk_count: int) -> None:
        if self._progress is not None:
            if self._reading is not None:
                self._progress.update(self._reading, unit="files")
            self._embedding = self._progress.add_task("embedding", total=chunk_count, unit="chunks", rate="")

    def add_chunks(self, chunk_count: int) -> None:
        """More chunks to embed: files are read while earlier chunks are embedded, so the total grows."""
        if self._progress is not None and self._embedding is not None:
            task = self._progress.tasks[self._embedding]
            self._progress.update(self._embedding, total=(task.total or 0) + chunk_count)

    def advance(self, chunk_count: int) -> None:
        if self._progress is not None and self._embedding is not None:
            task = self._progress.tasks[self._embedding]
            self._progress.update(self._embedding, advance=chunk_count)
            speed = task.speed
            self._progress.update(self._embedding, rate=f"{speed:6.1f} chunks/s" if speed else "")
