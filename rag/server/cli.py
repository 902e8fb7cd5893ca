"""``rag serve`` (the HTTP API) and ``rag mcp`` (the MCP server): their options, checks and start-up.

Plain typer commands that ``rag.cli.main`` registers; FastAPI, uvicorn, the MCP SDK and the
embedding model load only when one of them runs, so ``rag --help`` stays quick. Everything they
print goes to stderr: on stdio, stdout is the MCP wire.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rag.config import INDEX_HELP, default_index

if TYPE_CHECKING:
    from rag.collection import Collection
    from rag.service import Backends

TOKEN_ENV = "RAG_API_TOKEN"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

errors = Console(stderr=True, soft_wrap=True)

IndexOption = Annotated[str | None, typer.Option("--index", "-i", help=INDEX_HELP, show_default=False)]
LlmOption = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Answer backend: extractive (offline), openai:MODEL, ollama:MODEL or gguf:PATH. "
        "Default: $RAG_LLM or the config file.",
        show_default=False,
    ),
]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code=1)


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token.

    >>> check_binding("127.0.0.1", None)
    >>> check_binding("0.0.0.0", None)
    Traceback (most recent call last):
    ...
    ValueError: listening on 0.0.0.0 needs a token (--token or $RAG_API_TOKEN): without one anyone who can reach this machine could read and change the index
    """
    if host not in LOOPBACK_HOSTS and not token:
        raise ValueError(
            f"listening on {host} needs a token (--token or ${TOKEN_ENV}): without one anyone who can "
            "reach this machine could read and change the index"
        )


def _open(index: str | None, llm: str | None) -> tuple[Collection, Backends]:
    """The index (which must exist) with its model loaded, and the answer backends; one-line errors."""
    from index.embedding import ModelNotFoundError
    from index.store import IndexStoreError
    from index.stores import store_exists
    from rag.collection import open_collection
    from rag.llm import LlmConfigError
    from rag.service import configured_backends

    index_dir = index if index is not None else default_index()
    try:
        if not store_exists(index_dir):
            raise _fail(
                f"{index_dir}: no index here; build one first with `rag add PATH` "
                f"(`rag add docs/` indexes the user guide), or pass --index"
            )
        backends = configured_backends(llm)
        errors.print(f"Loading the index {index_dir} and the embedding model…", highlight=False)
        return open_collection(index_dir, warm_up=True), backends
    except (IndexStoreError, ModelNotFoundError, LlmConfigError) as error:
        raise _fail(str(error)) from None


def serve_command(
    index: IndexOption = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but 127.0.0.1/localhost needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar=TOKEN_ENV, help="Require `Authorization: Bearer TOKEN` on /v1.", show_default=False),
    ] = None,
    llm: LlmOption = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest file POST /v1/documents accepts, in MB.", min=0.001)] = 50,
    max_requests: Annotated[
        int, typer.Option(help="Requests served at once; more get 503 with Retry-After.", min=1)
    ] = 8,
) -> None:
    """Serve the HTTP API: search, ask (streamed or not), OpenAI-compatible chat completions, documents.

    API docs at http://HOST:PORT/docs.
    """
    try:
        check_binding(host, token)
    except ValueError as error:
        raise _fail(str(error)) from None
    collection, backends = _open(index, llm)

    import uvicorn

    from rag.server.http import ApiSettings, create_app

    settings = ApiSettings(token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_requests=max_requests)
    app = create_app(collection, backends, settings)
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token required" if token else "no token"
    errors.print(f"Serving http://{shown}:{port}/v1 ({auth}); API docs at http://{shown}:{port}/docs", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)


def mcp_command(
    index: IndexOption = None,
    http: Annotated[
        int | None,
        typer.Option(
            "--http",
            help="Serve streamable HTTP on 127.0.0.1:PORT (at /mcp) instead of stdio.",
            min=1,
            max=65535,
            show_default=False,
        ),
    ] = None,
    allow_writes: Annotated[
        bool, typer.Option("--allow-writes", help="Offer the add_documents and remove_documents tools.")
    ] = False,
    llm: LlmOption = None,
) -> None:
    """Serve the index to AI agents over the Model Context Protocol (stdio, or --http PORT).

    Tools: search, ask, list_documents; add_documents and remove_documents with --allow-writes.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings on the MCP client's stderr
    collection, backends = _open(index, llm)

    from rag.server.mcp import create_server

    server = create_server(collection, backends, allow_writes=allow_writes)
    writes = "with" if allow_writes else "without"
    if http is None:
        errors.print(f"MCP server on stdio ({writes} write tools)", highlight=False)
        server.run()
        return
    errors.print(f"MCP server on http://127.0.0.1:{http}/mcp ({writes} write tools)", highlight=False)
    server.run("streamable-http", host="127.0.0.1", port=http)
