"""The chat page: a Gradio Blocks app over the collections of a ``CollectionManager``.

``build_app`` lays out the page (sidebar with saved conversations and settings, chat with its
sources panel and feedback form, documents tab) and wires it to the handlers in ``ui.chat``,
``ui.saved``, ``ui.feedback`` and ``ui.library``; ``serve`` starts the server.

Usage (what ``rag chat`` does)::

    manager = CollectionManager(root, index_dir)
    serve(build_app(manager, configured_backends()), host="127.0.0.1", port=7860)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from rag.retrieval.retriever import SEARCH_MODES
from rag.service import (
    ANSWER_CONCURRENCY,
    DEFAULT_K,
    MAX_K,
    MAX_UPLOAD_MB,
    UPLOAD_SUFFIXES,
    Backends,
    extractive_only,
)
from ui import render
from ui.chat import DEFAULT_MODE, ChatHandlers
from ui.collections import CollectionManager
from ui.feedback import FeedbackHandlers
from ui.js import HEADER_JS, SOURCES_PANEL_JS
from ui.library import LibraryHandlers
from ui.saved import BROWSER_STORAGE_KEY, SavedConversationHandlers, browser_secret
from ui.theme import CSS, THEME

# UI events are not part of the API: only ``/ask`` is, so the API page shows one clear endpoint.
# They are quick (state, SQLite, rendering) and never wait in the queue behind answers: Stop, say,
# must run while an answer is being written.
_PRIVATE: dict[str, Any] = {"api_visibility": "private", "concurrency_limit": None}
# Answering shares one concurrency limit, whether it comes from the page or the API.
_ANSWERING: dict[str, Any] = {**_PRIVATE, "concurrency_id": "answer", "concurrency_limit": ANSWER_CONCURRENCY}
# Uploads embed on the CPU: one at a time, whoever sends them.
_INGESTING: dict[str, Any] = {**_PRIVATE, "concurrency_id": "ingest", "concurrency_limit": 1}


@dataclass
class _State:
    """What one browser tab holds: the open conversation, its answers and the browser's saved conversations."""

    conversation: gr.State
    answers: gr.State
    meta: gr.State
    saved: gr.BrowserState
    feedback_target: gr.State


@dataclass
class _Conversations:
    new: gr.Button
    listing: gr.Radio
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button


@dataclass
class _Settings:
    collection: gr.Dropdown
    new_name: gr.Textbox
    create: gr.Button
    create_status: gr.HTML
    mode: gr.Radio
    k: gr.Slider
    backend: gr.Radio

    @property
    def answer_inputs(self) -> list[gr.components.Component]:
        return [self.collection, self.mode, self.k, self.backend]


@dataclass
class _Chat:
    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    stop: gr.Button
    retry: gr.Button
    undo: gr.Button
    export: gr.DownloadButton
    feedback_form: gr.Group
    feedback_heading: gr.HTML
    feedback_note: gr.Textbox
    feedback_answer: gr.Textbox
    feedback_source: gr.Textbox
    feedback_send: gr.Button
    feedback_close: gr.Button
    feedback_status: gr.HTML
    sources: gr.HTML


@dataclass
class _Documents:
    uploads: gr.File
    summary: gr.HTML
    table: gr.Dataframe
    to_remove: gr.Dropdown
    remove: gr.Button
    remove_status: gr.HTML


def _conversations_section() -> _Conversations:
    gr.HTML('<div class="side-title">Conversations</div>')
    new = gr.Button("+ New conversation", size="sm", variant="secondary", elem_id="new-conversation")
    listing = gr.Radio(
        choices=[], value=None, show_label=False, container=False, elem_id="conversations", elem_classes="conversation-list"
    )
    with gr.Accordion("Rename or delete", open=False, elem_id="conversation-edit"):
        title = gr.Textbox(placeholder="a title for this conversation", show_label=False, container=False, elem_id="conversation-title")
        with gr.Row():
            rename = gr.Button("Rename", size="sm", elem_id="rename-conversation")
            delete = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-conversation")
    return _Conversations(new, listing, title, rename, delete)


def _settings_sidebar(manager: CollectionManager, backends: Backends) -> tuple[_Conversations, _Settings]:
    with gr.Sidebar(label="Settings", open=True, width=300, elem_id="settings"):
        conversations = _conversations_section()
        gr.HTML('<div class="side-title">Collection</div>')
        collection = gr.Dropdown(
            choices=manager.choices(),
            value=str(manager.default_dir),
            show_label=False,
            container=False,
            elem_id="collection",
        )
        with gr.Accordion("New collection", open=False, elem_id="new-collection"):
            new_name = gr.Textbox(
                placeholder="name, e.g. contracts-2025",
                show_label=False,
                container=False,
                elem_id="new-collection-name",
            )
            create = gr.Button("Create", size="sm", elem_id="create-collection")
            create_status = gr.HTML()
        gr.HTML('<div class="side-title">Answers</div>')
        mode = gr.Radio(
            list(SEARCH_MODES),
            value=DEFAULT_MODE,
            label="Retrieval",
            elem_id="mode",
            info="hybrid: meaning and keywords; dense: meaning; bm25: keywords",
        )
        k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages per answer", elem_id="k")
        backend = gr.Radio(backends.labels, value=backends.labels[0], label="Answer backend", elem_id="backend")
    return conversations, _Settings(collection, new_name, create, create_status, mode, k, backend)


def _chat_tab(examples: list[dict[str, str]] | None) -> _Chat:
    with gr.Row(equal_height=False, elem_id="chat-row"):
        with gr.Column(scale=3, min_width=320, elem_id="chat-column"):
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                show_label=False,
                height="64vh",
                min_height=360,
                examples=examples,
                latex_delimiters=[],  # a "$" in a document is a dollar, not mathematics
                buttons=[],  # Gradio's copy would copy our HTML: each answer has its own Markdown copy link
                feedback_options=("Like", "Dislike"),
                placeholder="<div class='chat-placeholder'><strong>Ask your documents.</strong><br>"
                "Every sentence of an answer links to the passage it came from.</div>",
            )
            with gr.Row(elem_id="ask-row"):
                question = gr.Textbox(
                    placeholder="Ask a question about the documents…",
                    show_label=False,
                    container=False,
                    scale=8,
                    autofocus=True,
                    lines=1,
                    max_lines=6,  # Enter sends; Shift+Enter starts a new line, which the box grows to show
                    elem_id="question",
                )
                send = gr.Button("Ask", variant="primary", scale=1, min_width=72, elem_id="ask")
            with gr.Row(elem_id="chat-actions"):
                stop = gr.Button("■ Stop", size="sm", variant="secondary", elem_id="stop")
                retry = gr.Button("↻ Retry", size="sm", variant="secondary", elem_id="retry")
                undo = gr.Button("↶ Undo", size="sm", variant="secondary", elem_id="undo")
                export = gr.DownloadButton(
                    "⤓ Export", size="sm", variant="secondary", interactive=False, elem_id="export"
                )
            with gr.Group(visible=False, elem_id="feedback-form", elem_classes="feedback-form") as feedback_form:
                feedback_heading = gr.HTML(elem_id="feedback-heading")
                feedback_note = gr.Textbox(label="What was wrong? (optional)", lines=2, elem_id="feedback-note")
                feedback_answer = gr.Textbox(
                    label="The correct answer, if you know it: the words a right answer contains",
                    elem_id="feedback-answer",
                )
                feedback_source = gr.Textbox(
                    label="Or the document that answers it (file name or path)", elem_id="feedback-source"
                )
                with gr.Row():
                    feedback_send = gr.Button("Send feedback", variant="primary", size="sm", elem_id="feedback-send")
                    feedback_close = gr.Button("Close", size="sm", elem_id="feedback-close")
            feedback_status = gr.HTML(elem_id="feedback-status")
        # An accordion so that on a phone, where the panel falls below the chat, it folds away (ui/js.py).
        with (
            gr.Column(scale=2, min_width=300, elem_id="sources-column"),
            gr.Accordion("Sources", open=True, elem_id="sources-accordion"),
        ):
            sources = gr.HTML(render.empty_sources_html(), js_on_load=SOURCES_PANEL_JS, elem_id="sources")
    return _Chat(
        chatbot,
        question,
        send,
        stop,
        retry,
        undo,
        export,
        feedback_form,
        feedback_heading,
        feedback_note,
        feedback_answer,
        feedback_source,
        feedback_send,
        feedback_close,
        feedback_status,
        sources,
    )


def _documents_tab(rows: list[list[Any]], removable: list[tuple[str, str]]) -> _Documents:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            uploads = gr.File(
                label="Add documents",
                file_count="multiple",
                file_types=list(UPLOAD_SUFFIXES),
                height=180,
                elem_id="upload",
            )
            gr.HTML(
                f'<p class="muted">PDF, Word (.docx), HTML, Markdown or text, up to {MAX_UPLOAD_MB} MB a file. '
                "They are added to the collection chosen on the left.</p>"
            )
            summary = gr.HTML(elem_id="upload-summary")
        with gr.Column(scale=3, min_width=300):
            table = gr.Dataframe(
                value=rows,
                headers=["Title", "File", "Passages", "Added"],
                interactive=False,
                wrap=True,
                max_height=420,
                column_widths=["32%", "32%", "16%", "20%"],
                label="Documents in this collection",
                elem_id="documents",
            )
            with gr.Row():
                to_remove = gr.Dropdown(
                    choices=removable, value=None, label="Remove a document", scale=4, elem_id="remove-choice"
                )
                remove = gr.Button("Remove", variant="stop", scale=1, min_width=90, elem_id="remove")
            remove_status = gr.HTML(elem_id="remove-status")
    return _Documents(uploads, summary, table, to_remove, remove, remove_status)


def _wire_chat(
    chat: ChatHandlers,
    saved: SavedConversationHandlers,
    feedback: FeedbackHandlers,
    page: _Chat,
    side: _Conversations,
    settings: _Settings,
    state: _State,
) -> None:
    outputs = [page.chatbot, page.sources, state.conversation, state.answers, page.question]
    asking = [page.question, state.conversation, state.answers, *settings.answer_inputs]
    # After every change the conversation is saved (browser or server) and the export refreshed.
    persist_inputs = [state.conversation, state.answers, state.meta, state.saved]
    persist_outputs = [state.meta, state.saved, side.listing, page.export]
    answering = [
        page.question.submit(chat.respond, asking, outputs, **_ANSWERING),
        page.send.click(chat.respond, asking, outputs, **_ANSWERING),
        page.chatbot.example_select(
            chat.respond_to_example, [state.conversation, state.answers, *settings.answer_inputs], outputs, **_ANSWERING
        ),
        page.retry.click(chat.retry, [state.conversation, state.answers, *settings.answer_inputs], outputs, **_ANSWERING),
    ]
    for event in answering:
        event.then(saved.persist, persist_inputs, persist_outputs, **_PRIVATE)
    page.stop.click(chat.stop, None, None, **_PRIVATE)  # the answer ends itself and is saved as usual
    page.undo.click(
        chat.undo, [state.conversation, state.answers, settings.collection], outputs, **_PRIVATE
    ).then(saved.persist, persist_inputs, persist_outputs, **_PRIVATE)
    page.sources.cite(  # type: ignore[attr-defined]
        chat.show_source, [state.conversation, state.answers, settings.collection], page.sources, **_PRIVATE
    )
    form = [page.feedback_form, state.feedback_target]
    page.chatbot.like(
        feedback.rate,
        [state.conversation, state.answers, state.meta],
        [
            state.conversation,
            page.feedback_form,
            page.feedback_heading,
            page.feedback_note,
            page.feedback_answer,
            page.feedback_source,
            state.feedback_target,
            page.feedback_status,
        ],
        **_PRIVATE,
    ).then(saved.persist, persist_inputs, persist_outputs, **_PRIVATE)
    page.feedback_send.click(
        feedback.send,
        [
            state.feedback_target,
            page.feedback_note,
            page.feedback_answer,
            page.feedback_source,
            state.conversation,
            state.answers,
            state.meta,
        ],
        [*form, page.feedback_status],
        **_PRIVATE,
    )
    page.feedback_close.click(feedback.close, None, form, **_PRIVATE)


def _wire_conversations(
    saved: SavedConversationHandlers, page: _Chat, side: _Conversations, settings: _Settings, state: _State, demo: gr.Blocks
) -> None:
    opened = [
        page.chatbot,
        page.sources,
        state.conversation,
        state.answers,
        state.meta,
        settings.collection,
        side.title,
        side.listing,
        page.export,
    ]
    side.listing.input(saved.reopen, [side.listing, state.saved], opened, **_PRIVATE)
    side.new.click(saved.new, [settings.collection, state.saved], opened, **_PRIVATE)
    page.chatbot.clear(saved.new, [settings.collection, state.saved], opened, **_PRIVATE)  # its own trash button
    side.rename.click(
        saved.rename,
        [side.title, state.conversation, state.answers, state.meta, state.saved],
        [state.meta, state.saved, side.listing, page.export],
        **_PRIVATE,
    )
    side.delete.click(saved.delete, [state.meta, settings.collection, state.saved], [*opened, state.saved], **_PRIVATE)
    # A question asked before this ran is kept (see SavedConversationHandlers.load).
    demo.load(saved.load, [state.saved, settings.collection, state.conversation], opened, **_PRIVATE)


def _wire_library(
    library: LibraryHandlers,
    header: gr.HTML,
    chat: _Chat,
    documents: _Documents,
    settings: _Settings,
    state: _State,
    demo: gr.Blocks,
) -> None:
    view = [header, documents.table, documents.to_remove, chat.chatbot]  # what collection_view returns
    # Progress shows on the summary alone, not as an overlay on every output.
    documents.uploads.upload(
        library.upload,
        [documents.uploads, settings.collection],
        [documents.summary, documents.uploads, *view],
        show_progress_on=[documents.summary],
        **_INGESTING,
    )
    documents.remove.click(
        library.remove,
        [documents.to_remove, settings.collection],
        [documents.remove_status, *view],
        show_progress_on=[documents.remove_status],
        **_INGESTING,
    )
    settings.collection.change(
        library.switch,
        [settings.collection, state.meta],
        [*view, chat.sources, state.conversation, state.answers, chat.question, state.meta],
        **_PRIVATE,
    )
    settings.create.click(
        library.create, settings.new_name, [settings.collection, settings.new_name, settings.create_status], **_PRIVATE
    )
    # Another session may have uploaded since the page was built: show the collection as it is now.
    demo.load(library.collection_view, settings.collection, view, **_PRIVATE)


def build_app(manager: CollectionManager, backends: Backends | None = None) -> gr.Blocks:
    """The chat page over ``manager``'s collections; the API endpoint ``/ask`` answers with JSON."""
    backends = backends or extractive_only()
    chat = ChatHandlers(manager, backends)
    saved = SavedConversationHandlers(chat)
    feedback = FeedbackHandlers(chat)
    library = LibraryHandlers(manager)
    header_html, rows, removable, examples = library.collection_view(str(manager.default_dir))

    with gr.Blocks(title="rag-assistant", analytics_enabled=False, fill_width=True) as demo:
        state = _State(
            conversation=gr.State([]),
            answers=gr.State({}),
            meta=gr.State({}),  # set on page load (ui.saved): a new conversation or the last one
            # Used only without a login; with --auth conversations are kept per user on the server.
            saved=gr.BrowserState(
                {"conversations": []}, storage_key=BROWSER_STORAGE_KEY, secret=browser_secret(manager.default_dir)
            ),
            feedback_target=gr.State({}),
        )
        side, settings = _settings_sidebar(manager, backends)
        header = gr.HTML(header_html, js_on_load=HEADER_JS, elem_id="app-header")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat", elem_id="chat-tab"):
                chat_page = _chat_tab(examples["examples"])
            with gr.Tab("Documents", id="documents", elem_id="documents-tab"):
                documents_page = _documents_tab(rows, removable["choices"])
        _wire_chat(chat, saved, feedback, chat_page, side, settings, state)
        _wire_conversations(saved, chat_page, side, settings, state, demo)
        _wire_library(library, header, chat_page, documents_page, settings, state, demo)
        gr.api(chat.ask_api, api_name="ask", concurrency_id="answer", concurrency_limit=ANSWER_CONCURRENCY)
    return demo


def serve(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth: tuple[str, str] | list[tuple[str, str]] | None = None,
    open_browser: bool = False,
    block: bool = True,
) -> str:
    """Queue and launch the page; returns its URL (after the server stops, when ``block``).

    Raises ``OSError`` when the port is taken.
    """
    demo.queue(default_concurrency_limit=ANSWER_CONCURRENCY, max_size=64)
    demo.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        share=False,  # never tunnel documents to a public URL, whatever GRADIO_SHARE says
        inbrowser=open_browser,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        footer_links=["api"],
        run_history=False,  # answers quote private documents: keep them out of the browser's storage
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        show_error=True,
        quiet=True,  # Gradio's banner suggests share=True; we print our own line instead
        prevent_thread_lock=True,
        theme=THEME,
        css=CSS,
    )
    url = str(demo.local_url)
    print(f"Chat page: {url}  (Ctrl+C to stop)", flush=True)
    if block:
        demo.block_thread()
    return url
