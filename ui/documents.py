"""The Documents tab's work: check uploads, add them to a collection, list and remove documents.

Uploaded files are copied into the collection's ``uploads/`` folder before they are indexed,
because a document's id is its file path and Gradio's temporary upload folder is cleaned up.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from index.ingest import AddReport, Ingestor
from index.loaders import SUPPORTED_SUFFIXES, LoadError
from index.store import IndexStoreError
from ui.collections import Collection

MAX_UPLOAD_MB = 50
"""Largest file the page accepts; bigger documents belong in ``rag add`` from the terminal."""
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# What the upload box offers; .jsonl corpora are a command-line affair (``rag add``).
UPLOAD_SUFFIXES: tuple[str, ...] = tuple(sorted(SUPPORTED_SUFFIXES - {".jsonl"}))

Progress = Callable[[int, int, str], None]
"""Called as ``progress(done, total, file_name)`` before each file is added."""


@dataclass
class UploadResult:
    """What an upload did: the merged report of every file, and the files refused before indexing."""

    report: AddReport = field(default_factory=AddReport)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def rejection_reason(path: Path) -> str | None:
    """Why ``path`` cannot be uploaded, or None when it can.

    >>> rejection_reason(Path("setup.exe"))
    'unsupported type .exe (supported: .docx, .htm, .html, .markdown, .md, .pdf, .txt)'
    """
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return f"unsupported type {suffix or '(none)'} (supported: {', '.join(UPLOAD_SUFFIXES)})"
    try:
        size = path.stat().st_size
    except OSError as error:
        return f"cannot read the upload ({error.strerror or error})"
    if size > MAX_UPLOAD_BYTES:
        return f"{size / 1024 / 1024:.0f} MB is over the {MAX_UPLOAD_MB} MB limit; add it with `rag add` instead"
    return None


def add_uploads(
    collection: Collection, uploads: Sequence[str | Path], progress: Progress | None = None
) -> UploadResult:
    """Copy accepted uploads into the collection and index them one file at a time.

    The write lock is taken per file, so questions asked meanwhile wait for one file, not all.
    """
    result = UploadResult()
    accepted: list[Path] = []
    for upload in uploads:
        path = Path(upload)
        reason = rejection_reason(path)
        if reason:
            result.rejected.append((path.name, reason))
        else:
            accepted.append(path)
    collection.uploads_dir.mkdir(parents=True, exist_ok=True)
    for done, path in enumerate(accepted):
        if progress:
            progress(done, len(accepted), path.name)
        target = collection.uploads_dir / path.name
        shutil.copyfile(path, target)
        report = _add_one(collection, target)
        if report.failed or report.skipped:
            target.unlink(missing_ok=True)  # a file we could not index should not linger in uploads/
        _merge(result.report, report)
    return result


def _add_one(collection: Collection, path: Path) -> AddReport:
    with collection.writing() as retriever:
        store = retriever.store
        try:
            with store.writer_lock():
                return Ingestor(store, retriever.embedder, show_progress=False).add([path])
        except IndexStoreError as error:
            # Another process (``rag add``) holds the index: say so for this file, go on with the rest.
            report = AddReport()
            report.failed.append(LoadError(path, str(error).split(": ", 1)[-1]))
            return report


def _merge(total: AddReport, part: AddReport) -> None:
    for name in ("added", "updated", "unchanged", "removed", "chunks_embedded", "chunks_reused"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.seconds += part.seconds
    total.skipped.extend(part.skipped)
    total.failed.extend(part.failed)


def summary_html(result: UploadResult) -> str:
    """The result of an upload as a short HTML summary; file names and reasons are escaped."""
    report = result.report
    counts = [("added", report.added), ("updated", report.updated), ("unchanged", report.unchanged)]
    failed = [(Path(f.path).name, f.reason) for f in report.failed]
    failed += [(Path(s.path).name, s.reason) for s in report.skipped]
    failed += result.rejected
    pills = "".join(f'<span class="pill {name}">{count} {name}</span>' for name, count in counts if count)
    if failed:
        pills += f'<span class="pill failed">{len(failed)} not added</span>'
    if not pills:
        return '<div class="upload-summary"><p>No files were uploaded.</p></div>'
    timing = f"<span class='muted'>{report.chunks_embedded} passages indexed in {report.seconds:.1f} s</span>"
    items = "".join(f"<li><strong>{html.escape(name)}</strong>: {html.escape(reason)}</li>" for name, reason in failed)
    failures = f'<ul class="failures">{items}</ul>' if items else ""
    return f'<div class="upload-summary"><div class="pills">{pills}{timing}</div>{failures}</div>'


def document_rows(collection: Collection) -> list[list[str | int]]:
    """One row per document for the table, newest first (what was just uploaded is on top)."""
    with collection.reading() as retriever:
        documents = sorted(retriever.store.documents(), key=lambda info: -info.added_at)
    return [
        [
            info.title or Path(info.source).name,
            short_path(info.source),
            info.chunk_count,
            datetime.fromtimestamp(info.added_at).strftime("%Y-%m-%d %H:%M"),
        ]
        for info in documents
    ]


def short_path(source: str) -> str:
    """A source as its folder and file name, enough to tell documents apart in a narrow table.

    >>> short_path("/home/ada/notes/python-tutorial/errors.html")
    'python-tutorial/errors.html'
    """
    path = Path(source)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def document_choices(collection: Collection) -> list[tuple[str, str]]:
    """(label, document id) pairs for the remove dropdown."""
    with collection.reading() as retriever:
        documents = retriever.store.documents()
    return [(f"{info.title or Path(info.source).name} ({Path(info.source).name})", info.id) for info in documents]


def remove_document(collection: Collection, document_id: str) -> str:
    """Remove one document (and its uploaded copy, if the page uploaded it); returns a status line."""
    with collection.writing() as retriever:
        document = next((d for d in retriever.store.documents() if d.id == document_id), None)
        if document is None:
            return "That document is no longer in the collection."
        try:
            retriever.delete([document_id])
        except IndexStoreError as error:
            return f"Not removed: {error}"
    source = Path(document.source)
    if source.parent == collection.uploads_dir.resolve():
        source.unlink(missing_ok=True)
    return f"Removed “{document.title or source.name}”."
