"""The Documents tab's views: the upload summary, the document table, the remove list, removal.

Uploads are added by ``rag.service.add_uploads`` (the HTTP API's uploads go the same way).
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path

from index.store import IndexStoreError
from rag import service
from rag.collection import Collection
from rag.service import AddResult


def summary_html(result: AddResult) -> str:
    """The result of an upload as a short HTML summary; file names and reasons are escaped."""
    report = result.report
    counts = [("added", report.added), ("updated", report.updated), ("unchanged", report.unchanged)]
    failed = [(Path(f.file).name, f.reason) for f in result.not_added]
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
    documents = sorted(service.list_documents(collection), key=lambda info: -info.added_at)
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
    documents = service.list_documents(collection)
    return [(f"{info.title or Path(info.source).name} ({Path(info.source).name})", info.id) for info in documents]


def remove_document(collection: Collection, document_id: str) -> str:
    """Remove one document (and its uploaded copy, if it was uploaded); returns a status line."""
    try:
        removed = service.remove_documents(collection, [document_id])
    except IndexStoreError as error:
        return f"Not removed: {error}"
    if not removed:
        return "That document is no longer in the collection."
    return f"Removed “{removed[0].title or Path(removed[0].source).name}”."
