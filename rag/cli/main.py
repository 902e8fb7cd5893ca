"""The ``rag`` command line: add, status, search, delete (and the commands of later features).

Errors a user can cause are printed as one line on stderr with exit code 1; nothing here hides a bug.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from index.embedding import EMBEDDER_ENV, EMBEDDER_KINDS, ModelNotFoundError
from index.manifest import IndexStoreError
from index.stores import read_store_status
from rag.config import INDEX_HELP, default_index

if TYPE_CHECKING:
    from index.ingest import AddReport
    from index.ray_ingest import RayOptions

app = typer.Typer(
    help="Ask questions of your documents and get answers that cite their sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # paths and summaries stay on one line in logs

IndexOption = Annotated[str | None, typer.Option("--index", "-i", help=INDEX_HELP, show_default=False)]


def _index_dir(index: str | None) -> str | Path:
    return index if index is not None else default_index()


def _fail(message: str) -> typer.Exit:
    # Escaped: a message naming an extra (`".[ray]"`) or a path with brackets is not rich markup.
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code=1)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False) -> None:
    """Configure logging once, here in the entry point."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def add(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files or folders to add (walked recursively); none with --vector-index alone.")
    ] = None,
    index: IndexOption = None,
    prune: Annotated[bool, typer.Option(help="Remove documents whose files are gone.")] = False,
    model: Annotated[
        str | None, typer.Option(help="Embedding model for a new index: a name or a local folder.")
    ] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Max tokens a chunk (new index).")] = None,
    overlap_tokens: Annotated[int | None, typer.Option(help="Tokens shared by neighbouring chunks.")] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Re-embed the whole index with the given model/chunk settings.")
    ] = False,
    embedder: Annotated[
        str | None,
        typer.Option(
            help=f"What runs the model for a new index (or with --rebuild): {', '.join(EMBEDDER_KINDS)}. "
            f"Default: ${EMBEDDER_ENV}, else onnx-int8."
        ),
    ] = None,
    vector_index: Annotated[
        str | None,
        typer.Option(
            help="Vector index: auto (exact flat search while small, approximate IVF past 100,000 chunks), "
            "flat or ivf. Kept in the index; changing it rebuilds the vector index from the stored vectors."
        ),
    ] = None,
    follow_symlinks: Annotated[
        bool, typer.Option(help="Follow symbolic links that lead outside the folders given (skipped by default).")
    ] = False,
    max_file_mb: Annotated[
        float | None,
        typer.Option(help="Refuse files larger than this (default per format: 20 MB text/HTML, 50 DOCX, 100 PDF, 200 JSONL).", min=0.001),
    ] = None,
    max_seconds_per_file: Annotated[
        float | None, typer.Option(help="Give up on a file that takes longer to read and chunk (default 120).", min=0.01)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Load, chunk and embed with Ray Data's actors: on a local Ray started for this run, or on the "
            'cluster at --ray-address (or $RAY_ADDRESS). Needs pip install -e ".\\[ray]".',  # \\[ keeps rich markup off
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --ray: the cluster to run on: auto (the one this machine joined with `ray start`) or "
            "HEAD:6379. Default: $RAY_ADDRESS, else a local Ray.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Add or update files in the index; unchanged files are skipped."""
    from index.chunking import ChunkerSettings
    from index.ingest import add_to_index  # with the loaders and the chunker: only `add` needs them
    from index.limits import IngestLimits

    index_dir = _index_dir(index)
    if ray_address is not None and not ray:
        raise _fail("--ray-address goes with --ray")
    ray_options = _ray_options(ray_address) if ray else None
    if not paths and vector_index is None:
        raise _fail("name files or folders to add (or --vector-index to change only the vector index)")
    chunker = None
    if chunk_tokens is not None or overlap_tokens is not None:
        defaults = ChunkerSettings()
        try:
            chunker = ChunkerSettings(chunk_tokens or defaults.chunk_tokens, overlap_tokens or defaults.overlap_tokens)
        except ValueError as error:
            raise _fail(str(error)) from None
    try:
        limits = IngestLimits.from_env(max_file_mb=max_file_mb, max_seconds_per_file=max_seconds_per_file)
        with _ray_session(ray_options):
            report = add_to_index(
                index_dir,
                paths or [],
                model=model,
                chunker=chunker,
                prune=prune,
                rebuild=rebuild,
                show_progress=not quiet,
                embedder_kind=embedder,
                vector_index=vector_index,
                follow_symlinks=follow_symlinks,
                limits=limits,
                ray=ray_options,
            )
    except (IndexStoreError, ModelNotFoundError, ValueError) as error:
        raise _fail(str(error)) from None
    except ConnectionError as error:  # Ray's: no cluster at the address given
        raise _fail(f"Ray: {' '.join(str(error).split())}") from None
    _print_add_report(report, index_dir)
    if report.nothing_added:
        raise typer.Exit(code=1)


@contextmanager
def _ray_session(options: RayOptions | None) -> Iterator[None]:
    """Ray connected (a local Ray started) for the whole of ``rag add --ray``, before the index is opened.

    Why before: starting a local Ray forks its processes, and with a Milvus index open its gRPC
    client then logs a line for each fork; a cluster that cannot be reached is reported before the
    index is touched. The cost: an add with nothing changed still starts Ray (about 10 s here).
    """
    if options is None:
        yield
        return
    from index.ray_ingest import import_ray, ray_session

    with ray_session(import_ray(), options):
        yield


def _ray_options(address: str | None) -> RayOptions:
    """The options of ``--ray [--ray-address ADDRESS]``, Ray checked to be installed before any work.

    Why a second option rather than ``--ray [ADDRESS]``: typer (0.29) cannot give an option an
    optional value; ``rag add docs --ray`` fails with "requires an argument".
    """
    from index.ray_ingest import RayNotInstalledError, RayOptions, import_ray

    try:
        import_ray()
        return RayOptions(address=address)
    except (RayNotInstalledError, ValueError) as error:
        raise _fail(str(error)) from None


def _print_add_report(report: AddReport, index_dir: str | Path) -> None:
    from rag.service import AddResult

    result = AddResult.of(report)
    for file in result.files:
        errors.print(file.line(), highlight=False, markup=False, style="red" if file.status == "failed" else None)
    errors.print(f"{index_dir}: {result.summary}", highlight=False, markup=False)


@app.command()
def status(index: IndexOption = None, json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show what the index holds: documents, chunks, model, size, last update."""
    try:
        info = read_store_status(_index_dir(index))  # a folder's manifest and SQLite only: no vectors are loaded
    except IndexStoreError as error:
        raise _fail(str(error)) from None
    updated = datetime.fromtimestamp(info.updated_at).isoformat(timespec="seconds") if info.updated_at else "never"
    rows = {
        "index": info.index_dir,
        "store": info.backend,
        "documents": info.documents,
        "chunks": info.chunks,
        "embedding model": info.embedding_model,
        "embedder": info.embedder,
        "dimension": info.dimension,
        "vector index": f"{info.vector_index}; setting {info.vector_index_setting}",
        "chunking": f"{info.chunker.chunk_tokens} tokens, {info.chunker.overlap_tokens} overlap",
        "size on disk": f"{info.size_bytes / 1e6:.1f} MB",
        "last update": updated,
    }
    if json_output:
        print(json.dumps({key.replace(" ", "_"): value for key, value in rows.items()}, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in rows.items():
        table.add_row(f"[bold]{key}[/bold]", str(value))
    console.print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many passages.", min=1)] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only sources matching this glob (repeatable).")
    ] = None,
    per_document: Annotated[bool, typer.Option(help="Only the best passage of each document.")] = False,
    index: IndexOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON list.")] = False,
    embedder: Annotated[
        str | None,
        typer.Option(help="Embed the query with another embedder of the index's model than the one that built it."),
    ] = None,
) -> None:
    """Search the index and print ranked passages."""
    from rag import service
    from rag.collection import open_collection

    try:
        collection = open_collection(_index_dir(index), embedder_kind=embedder)
        passages = service.search(collection, query, k=k, mode=mode, sources=source, per_document=per_document)
    except (IndexStoreError, ModelNotFoundError, ValueError) as error:
        raise _fail(str(error)) from None
    if json_output:
        print(json.dumps([p.to_dict() for p in passages], indent=2, ensure_ascii=False))
        return
    if not passages:
        console.print("no passages found")
    for passage in passages:
        where = passage.source + (f", page {passage.page}" if passage.page else "")
        heading = f"  [dim]{passage.chunk.heading}[/dim]" if passage.chunk.heading else ""
        console.print(
            f"[bold]{passage.rank}.[/bold] {passage.score:.3f}  [cyan]{where}[/cyan]{heading}", highlight=False
        )
        snippet = " ".join(passage.text.split())
        console.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}", highlight=False, markup=False)


@app.command()
def delete(
    document_ids: Annotated[list[str], typer.Argument(help="Document ids (for files: their absolute path).")],
    index: IndexOption = None,
) -> None:
    """Remove documents from the index."""
    from rag import service
    from rag.collection import open_collection

    try:
        removed = service.remove_documents(open_collection(_index_dir(index)), document_ids)
    except IndexStoreError as error:
        raise _fail(str(error)) from None
    errors.print(f"removed {len(removed)} of {len(document_ids)} documents", highlight=False)
    if not removed:
        raise typer.Exit(code=1)


def _register_feature_commands() -> None:
    """Commands whose code lives with its feature; their heavy imports wait until they run."""
    from evals.cli import eval_command
    from rag.cli.ask import ask_command
    from rag.server.cli import mcp_command, serve_command
    from ui.cli import chat_command

    app.command("ask", help="Answer a question from the documents, with verified citations.")(ask_command)
    app.command("chat", help="Open the chat page (builds the demo index on first start).")(chat_command)
    app.command("eval", help="Run an evaluation suite and compare it with a baseline.")(eval_command)
    app.command("serve", help="Serve the HTTP API (search, ask, OpenAI-compatible chat, documents).")(serve_command)
    app.command("mcp", help="Serve the index to AI agents over the Model Context Protocol.")(mcp_command)


_register_feature_commands()
