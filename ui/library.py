"""The Documents tab and the collection switcher: upload, list, remove, switch, create.

Each handler returns the updated pieces of the page that depend on the collection (header,
document table, remove list, example questions), computed by ``collection_view``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from index.store import IndexStoreError
from rag import service
from rag.collection import Collection
from ui import render
from ui.collections import CollectionManager
from ui.documents import document_choices, document_rows, remove_document, summary_html
from ui.examples import example_questions
from ui.saved import new_meta


def header_html(collection: Collection, document_count: int) -> str:
    """The page header: the product, and which collection is being asked with how many documents."""
    noun = "document" if document_count == 1 else "documents"
    return (
        '<div class="app-header"><div class="brand"><span class="logo">❝</span>'
        '<div><div class="brand-name">rag-assistant</div>'
        '<div class="brand-tag">Answers from your documents, every sentence with its source</div></div></div>'
        f'<div class="collection-pill" title="{render.escape(str(collection.index_dir))}">'
        f'<span class="pill-name">{render.escape(collection.name)}</span>'
        f'<span class="pill-count">{document_count} {noun}</span></div></div>'
    )


def discard_uploads(files: list[str]) -> None:
    """Delete Gradio's temporary copies of uploaded files (and their folders, when left empty).

    ``add_uploads`` keeps its own copy in the index's ``uploads/`` folder; Gradio's copies used to
    stay in its temporary folder for as long as the server ran (issue 10).
    """
    for name in files:
        path = Path(name)
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # Gradio puts each upload in a folder of its own
        except OSError:
            pass  # not empty, or not ours to remove


class LibraryHandlers:
    """Handlers of the Documents tab and the collection switcher."""

    def __init__(self, manager: CollectionManager) -> None:
        self.manager = manager

    def collection_view(self, collection_dir: str) -> tuple[Any, ...]:
        """(header, document rows, remove-list update, chatbot-examples update) for a collection."""
        collection = self.manager.get(collection_dir)
        rows = document_rows(collection)
        with collection.reading() as retriever:
            examples = example_questions(retriever.store)
        return (
            header_html(collection, len(rows)),
            rows,
            gr.update(choices=document_choices(collection), value=None),
            gr.update(examples=[{"text": q} for q in examples] or None),
        )

    def upload(
        self,
        files: list[str] | None,
        collection_dir: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio finds the progress bar by this default)
    ) -> tuple[Any, ...]:
        """Add uploaded files to the collection; returns (summary, cleared upload box, *collection view)."""
        if not files:
            return (gr.skip(),) * 6
        collection = self.manager.get(collection_dir)
        try:
            result = service.add_uploads(
                collection,
                files,
                progress=lambda done, total, name: progress((done, total), desc=f"Adding {name}", unit="files"),
            )
        finally:
            discard_uploads(files)
        return (summary_html(result), None, *self.collection_view(collection_dir))

    def remove(self, document_id: str | None, collection_dir: str) -> tuple[Any, ...]:
        """Remove the chosen document; returns (status, *collection view)."""
        if not document_id:
            return ('<p class="muted">Choose a document to remove.</p>', *self.collection_view(collection_dir))
        message = remove_document(self.manager.get(collection_dir), document_id)
        return (f"<p>{render.escape(message)}</p>", *self.collection_view(collection_dir))

    def switch(self, collection_dir: str, meta: dict[str, Any] | None = None) -> tuple[Any, ...]:
        """Serve another collection; a new conversation starts, since its sources are elsewhere (the
        one that was open stays saved). Reopening a saved conversation switches to its collection
        too, and then it stays open: ``meta`` (the open conversation) already names that collection.

        Returns (*collection view, sources panel, conversation, answers, question box, meta).
        """
        try:
            view = self.collection_view(collection_dir)
        except (IndexStoreError, ValueError) as error:
            gr.Warning(str(error))
            return (gr.skip(),) * 9
        if meta and meta.get("collection") == collection_dir:
            return (*view, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip())
        return (*view, render.empty_sources_html(), [], {}, "", new_meta(collection_dir))

    def create(self, name: str) -> tuple[Any, Any, str]:
        """Create an empty collection and switch to it; returns (dropdown update, name box, status)."""
        try:
            collection = self.manager.create(name)
        except (IndexStoreError, ValueError, OSError) as error:
            return gr.skip(), gr.skip(), f'<p class="error-text">{render.escape(str(error))}</p>'
        message = f"<p>Created “{render.escape(collection.name)}”. Add documents in the Documents tab.</p>"
        return gr.update(choices=self.manager.choices(), value=str(collection.index_dir)), "", message
