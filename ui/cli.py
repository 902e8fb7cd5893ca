"""``rag chat``: build the demo index on first start if needed, then serve the chat page.

``chat_command`` is a plain typer command; ``rag.cli`` registers it as ``rag chat``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from index.manifest import MANIFEST_NAME
from rag.config import INDEX_ENV, default_index_dir

errors = Console(stderr=True)

AUTH_ENV = "RAG_AUTH"
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def parse_logins(values: list[str] | None) -> list[tuple[str, str]] | None:
    """Each ``"user:password"`` of ``--auth`` (given once per user) as a pair; None when no login is wanted.

    >>> parse_logins(["ada:one", "bob:two"])
    [('ada', 'one'), ('bob', 'two')]
    """
    logins = [login for login in (parse_auth(value) for value in values or []) if login]
    users = [user for user, _ in logins]
    duplicated = sorted({user for user in users if users.count(user) > 1})
    if duplicated:
        raise ValueError(f"--auth names {', '.join(duplicated)} more than once")
    return logins or None


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``"user:password"`` as a (user, password) pair; None when no login is wanted.

    >>> parse_auth("ada:s3cret:with-colon")
    ('ada', 's3cret:with-colon')
    >>> parse_auth("nopassword")
    Traceback (most recent call last):
    ...
    ValueError: --auth must look like user:password (both non-empty)
    """
    if not value:
        return None
    user, _, password = value.partition(":")
    if not user or not password:
        raise ValueError("--auth must look like user:password (both non-empty)")
    return user, password


def find_demo_docs() -> Path | None:
    """The user guide that the demo index is built from, or None when it is not installed.

    In a clone (an editable install) it is the repository's ``docs/``; a wheel may install it
    under ``<prefix>/share/rag-assistant/docs``.
    """
    candidates = [
        Path(__file__).resolve().parent.parent / "docs",
        Path(sys.prefix) / "share" / "rag-assistant" / "docs",
    ]
    return next((folder for folder in candidates if folder.is_dir() and any(folder.glob("*.md"))), None)


def build_demo_index(index_dir: Path, docs_dir: Path) -> None:
    """Index the user guide into ``index_dir``, built beside it and moved in place when complete.

    Building aside means an interrupted first start leaves no half-built index to be served later.
    """
    from index.embedding import DEFAULT_MODEL
    from index.ingest import add_to_index
    from rag.collection import shared_embedder
    from ui.examples import DEMO_EXAMPLES, write_examples

    staging = index_dir.with_name(f".{index_dir.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    errors.print(f"First start: building the demo index of the user guide ({docs_dir}) in {index_dir}")
    # The page uses the same model right after: load it once for both.
    report = add_to_index(staging, [docs_dir], show_progress=True, embedder=shared_embedder(DEFAULT_MODEL))
    write_examples(staging, DEMO_EXAMPLES)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, index_dir)
    errors.print(f"Demo index ready: {report.added} documents, {report.chunks_embedded} passages.")


def relink_demo_docs(index_dir: Path, docs_dir: Path) -> int:
    """Re-point the demo documents of the default index at ``docs_dir`` when the clone they came from is gone.

    The default index lives in the user's data folder, shared by every checkout; a demo built from a
    clone that was then deleted kept sources pointing into it, so the page's source links led
    nowhere. A document counts as a stale demo page when its file no longer exists, it sat in a
    folder named ``docs`` and ``docs_dir`` has a page of the same name; those pages are added from
    ``docs_dir`` (the unchanged text embeds again, about 30 passages) and the stale ones removed.
    The user's own documents are never touched. Returns how many stale documents were replaced.
    """
    from index.loaders import source_exists
    from index.stores import open_store

    pages = {path.name for path in docs_dir.glob("*.md")}
    store = open_store(index_dir)
    try:
        stale = [
            document_id
            for document_id, source in store.document_sources().items()
            if Path(source).name in pages and Path(source).parent.name == "docs" and not source_exists(source)
        ]
    finally:
        store.close()
    if not stale:
        return 0
    from index.ingest import add_to_index

    errors.print(f"The demo documents in {index_dir} point to a folder that is gone; re-linking them to {docs_dir}")
    add_to_index(index_dir, [docs_dir], show_progress=True)
    store = open_store(index_dir)
    try:
        with store.writer_lock():
            removed = store.delete_documents(stale)
            store.save()
    finally:
        store.close()
    return removed


def _should_open_browser(requested: bool | None) -> bool:
    if requested is not None:
        return requested
    # Only where a browser can appear: an interactive terminal on a desktop, not a server or CI.
    has_display = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    return has_display and sys.stdout.isatty() and not os.environ.get("CI")


def _resolve_index(index: str | None) -> Path:
    """The folder to serve: ``--index`` as given (must hold an index), else the default (built if absent).

    A Milvus index is served through its companion folder (``index.stores``), which opens it.
    """
    from index.store import IndexStoreError
    from index.stores import is_milvus_location, open_store, store_exists

    if index is None and "://" in os.environ.get(INDEX_ENV, ""):
        index = os.environ[INDEX_ENV]
    if index is not None:
        try:
            if not store_exists(index):
                raise _fail(f"{index}: no index here; create one with `rag add PATH --index {index}`")
            if is_milvus_location(index):
                store = open_store(index)  # writes the companion folder's pointer
                store.close()
                return store.index_dir
        except IndexStoreError as error:
            raise _fail(str(error)) from None
        return Path(index)
    index_dir = default_index_dir()
    if not (index_dir / MANIFEST_NAME).is_file():
        docs_dir = find_demo_docs()
        if docs_dir is None:
            raise _fail(
                f"no index at {index_dir} and the demo documents are not installed; "
                "add your own with `rag add PATH` first"
            )
        if index_dir.exists() and any(index_dir.iterdir()):
            raise _fail(f"{index_dir} exists but holds no index; remove it or set ${INDEX_ENV} to another folder")
        build_demo_index(index_dir, docs_dir)
    elif (docs_dir := find_demo_docs()) is not None:
        relink_demo_docs(index_dir, docs_dir)
    return index_dir


def chat_command(
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            "-i",
            help=f"Index folder to serve, or a Milvus URI (milvus:///abs/path/file.db, milvus://host:19530/collection). "
            f"Default: ${INDEX_ENV}, else ~/.local/share/rag-assistant/default "
            "(built from the user guide on first start).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on. 0.0.0.0 makes the page reachable from other machines.")
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help="Port to listen on. Default: 7860, or the next free one.", min=1, max=65535, show_default=False
        ),
    ] = None,
    auth: Annotated[
        list[str] | None,
        typer.Option(
            envvar=AUTH_ENV,
            help="Require a login, given as user:password; repeat it for more users (in $RAG_AUTH, separated "
            "by spaces). Each user's conversations are then kept on the server, apart from the others'.",
            show_default=False,
        ),
    ] = None,
    open_browser: Annotated[
        bool | None,
        typer.Option(
            "--open/--no-open",
            help="Open the page in a web browser. Default: only on a desktop session.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Open the chat page: ask questions, see cited sources, upload documents."""
    try:
        credentials = parse_logins(auth)
    except ValueError as error:
        raise _fail(str(error)) from None
    index_dir = _resolve_index(index)
    if host not in _LOOPBACK_HOSTS and credentials is None:
        errors.print(
            f"[yellow]warning:[/yellow] listening on {host} without --auth: anyone who can reach this "
            "machine can read your documents through the page",
            highlight=False,
        )
    from index.embedding import ModelNotFoundError
    from index.store import IndexStoreError
    from ui.app import build_app, serve
    from ui.backends import configured_backends
    from ui.collections import CollectionManager

    errors.print("Loading the embedding model and the index…", highlight=False)
    try:
        manager = CollectionManager(default_index_dir().parent, index_dir)
        manager.get()  # load the model and the index now, once, before the first visitor
        demo = build_app(manager, configured_backends())
    except (IndexStoreError, ModelNotFoundError) as error:
        raise _fail(str(error)) from None
    try:
        serve(demo, host=host, port=port, auth=credentials, open_browser=_should_open_browser(open_browser))
    except OSError as error:  # the port is taken, or the address cannot be bound
        raise _fail(f"cannot listen on {host}:{port or 7860}: {error}") from None
