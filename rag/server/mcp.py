"""``rag mcp``: the index as Model Context Protocol tools for agents and desktop assistants.

Built on the official ``mcp`` SDK (``MCPServer``); served over stdio (what Claude Desktop, VS Code
and other hosts launch) or streamable HTTP on 127.0.0.1. The tools call :mod:`rag.service`, like
the CLI, the chat page and the HTTP API do:

- ``search``: ranked passages for a query; ``ask``: an answer with structured citations;
  ``list_documents``: what the index holds;
- ``add_documents`` and ``remove_documents``: only when started with ``--allow-writes``.

Every tool returns structured content (its JSON schema is published with the tool) and the same
as JSON text for the model. Bad arguments come back as tool errors the agent can read and fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from rag import service
from rag.collection import Collection
from rag.server.schemas import (
    MAX_SEARCH_K,
    AddReportOut,
    CitedAnswer,
    DocumentList,
    DocumentOut,
    Message,
    Mode,
    PassageOut,
    RemovedDocuments,
    SearchResponse,
)
from rag.service import DEFAULT_K, MAX_K, AssistantPool, Backends

SERVER_NAME = "rag-assistant"
INSTRUCTIONS = (
    "Searches and answers from the user's own documents (an index built with rag-assistant). "
    "Use `ask` for a direct answer whose sentences cite the documents as [n]; use `search` for the "
    "passages themselves (to read more, or to gather material); use `list_documents` to see what is "
    "indexed and to get document ids for filtering. When `ask` abstains, the documents do not "
    "answer the question: say so rather than guessing."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

SEARCH_DESCRIPTION = """Search the user's indexed documents for passages about a query.

Returns up to k passages, best first, each with its text, source file, title, page, heading and
score. Hybrid search (keywords and meaning together) suits most queries; "bm25" matches exact
words (names, codes, error messages); "dense" matches meaning when the wording differs. Narrow the
search with `sources` (globs on the file path, e.g. "*.pdf") or `document_ids` (from
`list_documents`). Prefer `ask` when you want an answer rather than passages."""

ASK_DESCRIPTION = """Answer a question from the user's indexed documents, with citations.

Returns the answer text, whose sentences end in [n] markers, and `citations`: for each marker the
source file, title, page and the quoted words of the passage it rests on. Citations are checked:
`supported` is false (and the sentence is listed in `unsupported_sentences`) when the passage does
not back the sentence. `abstained` is true when the documents do not answer the question; then
nothing is cited and you should not guess. For a follow-up question pass the earlier turns in
`history` ({"role": "user" | "assistant", "content": ...})."""

LIST_DESCRIPTION = """List the documents in the index: id, source path, title, number of passages
and when each was added. Use the ids with `search` (document_ids) or `remove_documents`."""

ADD_DESCRIPTION = """Add files or folders on this machine to the index, or update them if they
changed; unchanged files are skipped. Folders are walked recursively (txt, md, html, pdf, docx,
jsonl). Give absolute paths (~ is expanded). Returns a report per file: added, updated, unchanged,
skipped or failed with the reason, and each indexed file's document id. Large folders are better
added with `rag add` in a terminal."""

REMOVE_DESCRIPTION = """Remove documents from the index by id (ids from `list_documents`). The
files themselves are left alone, except copies that were uploaded into the index folder. Returns the
removed documents and the ids that were not found."""


def create_server(collection: Collection, backends: Backends, *, allow_writes: bool = False) -> MCPServer:
    """An MCP server over ``collection``; ``add_documents`` and ``remove_documents`` only with ``allow_writes``."""
    assistants = AssistantPool(backends)
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version=_version(), log_level="WARNING")

    def search(
        query: Annotated[str, Field(min_length=1, description="What to look for.")],
        k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K, description="How many passages.")] = DEFAULT_K,
        mode: Annotated[Mode, Field(description="hybrid (default), bm25 (exact words) or dense (meaning).")] = "hybrid",
        sources: Annotated[list[str] | None, Field(description="Only files whose path matches a glob.")] = None,
        document_ids: Annotated[list[str] | None, Field(description="Only these documents.")] = None,
        per_document: Annotated[bool, Field(description="Only the best passage of each document.")] = False,
    ) -> SearchResponse:
        passages = service.search(
            collection, query, k=k, mode=mode, sources=sources, document_ids=document_ids, per_document=per_document
        )
        return SearchResponse(query=query, mode=mode, passages=[PassageOut(**p.to_dict()) for p in passages])

    def ask(
        question: Annotated[str, Field(min_length=1, description="The question, in the user's words.")],
        history: Annotated[list[Message] | None, Field(description="Earlier turns, for a follow-up.")] = None,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="Passages the answer is drawn from.")] = DEFAULT_K,
        mode: Annotated[Mode, Field(description="Retrieval: hybrid (default), bm25 or dense.")] = "hybrid",
    ) -> CitedAnswer:
        earlier = [message.model_dump() for message in history or []]
        answer = service.ask(collection, assistants, question, earlier, k=k, mode=mode)
        return CitedAnswer.model_validate(answer.to_dict())

    def list_documents() -> DocumentList:
        return DocumentList(documents=[DocumentOut.of(info) for info in service.list_documents(collection)])

    server.add_tool(search, title="Search the documents", description=SEARCH_DESCRIPTION, annotations=READ_ONLY)
    server.add_tool(ask, title="Ask the documents", description=ASK_DESCRIPTION, annotations=READ_ONLY)
    server.add_tool(list_documents, title="List the documents", description=LIST_DESCRIPTION, annotations=READ_ONLY)
    if allow_writes:
        _add_write_tools(server, collection)
    return server


def _add_write_tools(server: MCPServer, collection: Collection) -> None:
    def add_documents(
        paths: Annotated[list[str], Field(min_length=1, description="Files or folders on this machine.")],
    ) -> AddReportOut:
        result = service.add_paths(collection, [Path(path).expanduser() for path in paths])
        return AddReportOut.of(result)

    def remove_documents(
        document_ids: Annotated[list[str], Field(min_length=1, description="Ids from list_documents.")],
    ) -> RemovedDocuments:
        removed = service.remove_documents(collection, document_ids)
        found = {info.id for info in removed}
        return RemovedDocuments(
            removed=[DocumentOut.of(info) for info in removed],
            not_found=[doc_id for doc_id in document_ids if doc_id not in found],
        )

    adds = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    removes = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
    server.add_tool(add_documents, title="Add documents", description=ADD_DESCRIPTION, annotations=adds)
    server.add_tool(remove_documents, title="Remove documents", description=REMOVE_DESCRIPTION, annotations=removes)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rag-assistant")
    except PackageNotFoundError:
        return "0"
