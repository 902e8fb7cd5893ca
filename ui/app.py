"""The chat page: a Gradio Blocks app over the collections of a ``CollectionManager``.

``build_app`` wires the page; the handlers are plain functions of the session's state (the
conversation, the answers by id, the chosen collection and settings), so they read like what
the user does: ask, show a source, retry, undo, clear, upload, remove, switch, create.

Usage (what ``rag chat`` does)::

    manager = CollectionManager(root, index_dir)
    serve(build_app(manager, configured_backends()), host="127.0.0.1", port=7860)
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from rag.assistant import DEFAULT_K
from rag.retriever import SEARCH_MODES
from ui import render
from ui.chat import ANSWER_CONCURRENCY, DEFAULT_MODE, MAX_K, Backends, ChatHandlers, extractive_only
from ui.collections import CollectionManager
from ui.documents import MAX_UPLOAD_MB, UPLOAD_SUFFIXES
from ui.js import HEADER_JS, SOURCES_PANEL_JS
from ui.library import LibraryHandlers
from ui.theme import CSS, THEME


def build_app(manager: CollectionManager, backends: Backends | None = None) -> gr.Blocks:
    """The chat page over ``manager``'s collections. Serve it with ``serve``."""
    backends = backends or extractive_only()
    chat = ChatHandlers(manager, backends)
    library = LibraryHandlers(manager)
    default_dir = str(manager.default_dir)
    header, rows, removable, examples = library.collection_view(default_dir)
    private: dict[str, Any] = {"api_visibility": "private"}
    answering: dict[str, Any] = {**private, "concurrency_id": "answer", "concurrency_limit": ANSWER_CONCURRENCY}

    with gr.Blocks(title="rag-assistant", analytics_enabled=False, fill_width=True) as demo:
        conversation = gr.State([])
        answers = gr.State({})

        with gr.Sidebar(label="Settings", open=True, width=300, elem_id="settings"):
            gr.HTML('<div class="side-title">Collection</div>')
            collection = gr.Dropdown(
                choices=manager.choices(), value=default_dir, show_label=False, elem_id="collection", container=False
            )
            with gr.Accordion("New collection", open=False, elem_id="new-collection"):
                new_name = gr.Textbox(
                    placeholder="name, e.g. contracts-2025", show_label=False, container=False, elem_id="new-collection-name"
                )
                create = gr.Button("Create", size="sm", elem_id="create-collection")
                create_status = gr.HTML()
            gr.HTML('<div class="side-title">Answers</div>')
            mode = gr.Radio(
                list(SEARCH_MODES), value=DEFAULT_MODE, label="Retrieval",
                info="hybrid: meaning and keywords; dense: meaning; bm25: keywords", elem_id="mode",
            )
            k = gr.Slider(1, MAX_K, value=DEFAULT_K, step=1, label="Passages per answer", elem_id="k")
            backend = gr.Radio(backends.labels, value=backends.labels[0], label="Answer backend", elem_id="backend")

        header_view = gr.HTML(header, elem_id="app-header", js_on_load=HEADER_JS)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat", elem_id="chat-tab"):
                with gr.Row(equal_height=False, elem_id="chat-row"):
                    with gr.Column(scale=3, min_width=320, elem_id="chat-column"):
                        chatbot = gr.Chatbot(
                            elem_id="chatbot", show_label=False, height="64vh", min_height=360,
                            latex_delimiters=[], buttons=[], examples=examples["examples"],
                            placeholder="<div class='chat-placeholder'><strong>Ask your documents.</strong><br>"
                            "Every sentence of an answer links to the passage it came from.</div>",
                        )
                        with gr.Row(elem_id="ask-row"):
                            question = gr.Textbox(
                                placeholder="Ask a question about the documents…", show_label=False,
                                container=False, scale=8, autofocus=True, elem_id="question", max_lines=6,
                            )
                            send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
                        with gr.Row(elem_id="chat-actions"):
                            retry = gr.Button("↻ Retry", size="sm", variant="secondary", elem_id="retry")
                            undo = gr.Button("↶ Undo", size="sm", variant="secondary", elem_id="undo")
                            clear = gr.Button("Clear", size="sm", variant="secondary", elem_id="clear")
                    with gr.Column(scale=2, min_width=300, elem_id="sources-column"):
                        sources = gr.HTML(render.empty_sources_html(), js_on_load=SOURCES_PANEL_JS, elem_id="sources")
            with gr.Tab("Documents", id="documents", elem_id="documents-tab"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=300):
                        uploads = gr.File(
                            label="Add documents", file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                            elem_id="upload", height=180,
                        )
                        gr.HTML(
                            f'<p class="muted">PDF, Word (.docx), HTML, Markdown or text, up to {MAX_UPLOAD_MB} MB a file. '
                            "They are added to the collection chosen on the left.</p>"
                        )
                        upload_summary = gr.HTML(elem_id="upload-summary")
                    with gr.Column(scale=3, min_width=300):
                        table = gr.Dataframe(
                            value=rows, headers=["Title", "File", "Passages", "Added"], interactive=False,
                            wrap=True, elem_id="documents", label="Documents in this collection", max_height=420,
                            column_widths=["38%", "34%", "12%", "16%"],
                        )
                        with gr.Row():
                            to_remove = gr.Dropdown(
                                choices=removable["choices"], value=None, label="Remove a document", scale=4, elem_id="remove-choice"
                            )
                            remove = gr.Button("Remove", variant="stop", scale=1, min_width=90, elem_id="remove")
                        remove_status = gr.HTML(elem_id="remove-status")

        chat_outputs = [chatbot, sources, conversation, answers, question]
        settings = [collection, mode, k, backend]
        question.submit(chat.respond, [question, conversation, answers, *settings], chat_outputs, **answering)
        send.click(chat.respond, [question, conversation, answers, *settings], chat_outputs, **answering)
        chatbot.example_select(chat.respond_to_example, [conversation, answers, *settings], chat_outputs, **answering)
        retry.click(chat.retry, [conversation, answers, *settings], chat_outputs, **answering)
        undo.click(chat.undo, [conversation, answers], chat_outputs, **private)
        clear.click(chat.clear, None, chat_outputs, **private)
        chatbot.clear(chat.clear, None, chat_outputs, **private)  # the chatbot's own trash button
        sources.cite(chat.show_source, [conversation, answers], sources, concurrency_limit=None, **private)  # type: ignore[attr-defined]

        view_outputs = [header_view, table, to_remove, chatbot]
        uploads.upload(
            library.upload, [uploads, collection], [upload_summary, uploads, *view_outputs],
            concurrency_id="ingest", concurrency_limit=1, **private,
        )
        remove.click(library.remove, [to_remove, collection], [remove_status, *view_outputs], concurrency_id="ingest", **private)
        collection.change(
            library.switch, collection, [*view_outputs, sources, conversation, answers, question], **private
        )
        create.click(library.create, new_name, [collection, new_name, create_status], **private)
        demo.load(library.collection_view, collection, view_outputs, **private)

        gr.api(chat.ask_api, api_name="ask", concurrency_id="answer", concurrency_limit=ANSWER_CONCURRENCY)
    return demo


def serve(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    auth: tuple[str, str] | None = None,
    open_browser: bool = False,
) -> None:
    """Queue and launch the page; blocks until the server stops."""
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
        theme=THEME,
        css=CSS,
    )
