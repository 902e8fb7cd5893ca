"""Add files to an index: load, chunk, embed and commit in small batches, skipping what is unchanged.

A file whose content hash is unchanged is not read again; a changed file's chunks are replaced
(chunks whose text did not change keep their stored vectors); ``prune`` removes documents whose
files are gone. Each batch is one SQLite transaction, so a killed run keeps every finished batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np

from index.chunking import Chunker, ChunkerSettings, embedding_text
from index.embedding import DEFAULT_MODEL, Embedder, default_embedder_kind, load_embedder, parse_embedder_kind
from index.limits import IngestLimits, LimitExceeded, time_budget
from index.loaders import LoadError, SkippedFile, discover_files, file_id, load_file, shown_path, source_exists
from index.progress import IngestProgress
from index.store import STORE_NAME, IndexSettings, IndexStore, SettingsMismatchError
from index.stores import (
    IndexLocation,
    MilvusLocation,
    Store,
    create_store,
    open_store,
    parse_location,
    read_store_settings,
    store_exists,
)
from index.structure import classify_blocks
from index.types import Chunk, Document
from index.vectors import check_setting as check_vector_index_setting

if TYPE_CHECKING:
    from index.ray_ingest import RayOptions  # imports nothing of Ray itself

log = logging.getLogger(__name__)

COMMIT_EVERY_CHUNKS = 64
"""Chunks embedded per transaction: small enough that a killed run loses seconds of work.
``$RAG_COMMIT_EVERY_CHUNKS`` changes it (the crash-point test commits every 8 to kill between many commits)."""
COMMIT_EVERY_ENV = "RAG_COMMIT_EVERY_CHUNKS"
EMBED_WINDOW = 64
"""Texts handed to the embedder at once: enough for it to sort by length and keep every core busy."""


@dataclass
class AddReport:
    """What one ``add`` did; the CLI prints it as the summary."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    skipped: list[SkippedFile] = field(default_factory=list)
    failed: list[LoadError] = field(default_factory=list)

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_embedded / self.seconds if self.seconds > 0 else 0.0

    @property
    def nothing_added(self) -> bool:
        """True when the run changed nothing and something failed: the CLI exits non-zero then."""
        return bool(self.failed) and not (self.added or self.updated or self.unchanged or self.removed)


@dataclass
class _PendingDocument:
    document: Document
    chunks: list[Chunk]
    is_update: bool
    vectors: np.ndarray | None = None
    """The chunks' vectors when they were embedded elsewhere (by a Ray actor); None: embed them at commit."""


@dataclass
class PreparedFile:
    """One file loaded and chunked: its new or changed documents, the ids of its unchanged ones, and
    the documents refused because another source holds their id."""

    changed: list[_PendingDocument] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[LoadError] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class KnownIds(Protocol):
    """What loading a file needs to know of the index: who holds an id, and each stored document's hash."""

    hashes: dict[str, str]

    def source_of(self, document_id: str) -> str | None: ...


def make_chunker(embedder: Embedder, settings: ChunkerSettings, limits: IngestLimits) -> Chunker:
    """The chunker of an index: its settings, the embedder's tokenizer, and the per-document limits."""
    return Chunker(
        embedder.count_tokens,
        settings,
        max_chars=limits.max_chunk_chars,
        max_chunks=limits.max_chunks_per_document,
    )


def load_and_chunk(path: Path, chunker: Chunker, limits: IngestLimits, known: KnownIds) -> PreparedFile:
    """Load one file and chunk its new or changed documents, inside a guard and within the limits.

    Whatever goes wrong with this one file (a loader's or the chunker's exception, however
    unexpected, a size, chunk or time limit) is raised as one ``LoadError`` naming the file
    and what is wrong (an unexpected exception with its type), so the run goes on with the
    other files. The traceback is logged at debug level (``rag -v add``) for whoever fixes the
    loader. A document whose id another source already holds is refused, not overwritten.
    The one definition of what a file's chunks are: the single-process path and Ray's actors both call it.
    """
    try:
        with time_budget(limits.max_seconds_per_file):
            prepared = PreparedFile()
            for document in load_file(path, limits):
                owner = known.source_of(document.id)
                if owner is not None and owner != document.source:
                    prepared.refused.append(_collision(path, document, owner))
                elif known.hashes.get(document.id) == document.metadata.get("sha256"):
                    prepared.unchanged.append(document.id)
                else:
                    chunks = chunker.split(document)
                    prepared.changed.append(_PendingDocument(document, chunks, owner is not None))
            return prepared
    except LoadError:
        raise
    except LimitExceeded as error:
        raise LoadError(path, str(error)) from None
    except Exception as error:  # any error at all: one bad file must not stop the run (issue 10)
        log.debug("%s: unexpected error while loading", shown_path(path), exc_info=True)
        detail = " ".join(str(error).split())[:200] or "no message"
        raise LoadError(path, f"could not be loaded ({type(error).__name__}: {detail})") from None


class Ingestor:
    """Adds files to one open index with one embedding model.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "note.txt").write_text("The meeting moved to Thursday at noon.")
    >>> report = add_to_index(folder / "index", [folder / "note.txt"], show_progress=False)
    >>> report.added, report.chunks_embedded
    (1, 1)
    """

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        show_progress: bool = True,
        limits: IngestLimits | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.limits = limits or IngestLimits.from_env()
        self.chunker = make_chunker(embedder, store.settings.chunker, self.limits)
        self.show_progress = show_progress
        self.commit_every = max(1, int(os.environ.get(COMMIT_EVERY_ENV) or COMMIT_EVERY_CHUNKS))

    def add(
        self,
        paths: Sequence[str | Path],
        prune: bool = False,
        follow_symlinks: bool = False,
        ray: RayOptions | None = None,
    ) -> AddReport:
        """Add, update or skip every supported file under ``paths``; optionally prune vanished ones.

        Files are read and chunked one at a time and their chunks committed in batches as they
        come, so memory holds a few batches, not the whole run, and a killed run keeps every
        committed batch. ``follow_symlinks`` follows symbolic links inside folders that lead
        outside the paths given (see ``discover_files``). With ``ray``, Ray Data's actors load,
        chunk and embed the files (see :mod:`index.ray_ingest`) and this process writes their
        results, with the same checks, batches and report.
        """
        started = time.perf_counter()
        report = AddReport()
        files, report.skipped, report.failed = discover_files(paths, follow_symlinks=follow_symlinks)
        if files:
            self.store.record_added_folders(paths)
        known = _KnownDocuments(self.store)
        seen_ids: set[str] = set()
        with IngestProgress(enabled=self.show_progress) as progress, BackgroundCommits(self._commit) as commits:
            progress.start_reading(len(files))
            progress.start_embedding(0)
            batch = _Batch()
            if ray is None:
                read = self._read_files(files, known, seen_ids, report, progress)
            else:
                read = self._read_files_with_ray(files, known, seen_ids, report, progress, ray)
            for items in read:
                for item in items:
                    progress.add_chunks(len(item.chunks))
                    if batch.add(item) >= self.commit_every:
                        commits.submit(batch.take(), report, progress)
            commits.submit(batch.take(), report, progress)
        if prune:
            report.removed = self._prune(paths, seen_ids)
        self.store.save()
        report.seconds = time.perf_counter() - started
        return report

    def _read_files(
        self, files: list[Path], known: _KnownDocuments, seen_ids: set[str], report: AddReport, progress: IngestProgress
    ) -> Iterator[list[_PendingDocument]]:
        """Each file's new or changed documents, chunked, one file at a time in this process."""
        for path in files:
            progress.reading(path)
            if self._is_unchanged(path, known, seen_ids, report):
                continue
            try:
                prepared = self.prepare_file(path, known)
            except LoadError as error:
                yield self._accept(path, error, known, seen_ids, report)
            else:
                yield self._accept(path, prepared, known, seen_ids, report)

    def _read_files_with_ray(
        self,
        files: list[Path],
        known: _KnownDocuments,
        seen_ids: set[str],
        report: AddReport,
        progress: IngestProgress,
        options: RayOptions,
    ) -> Iterator[list[_PendingDocument]]:
        """Each file's new or changed documents, chunked and embedded by Ray actors, in the order given.

        Unchanged files are recognised here, by their hash, before anything is sent to Ray. An actor
        knows only the stored hashes of its file's own documents, so whether an id belongs to another
        source is checked again here, against every document this run has claimed so far.
        """
        from index.ray_ingest import EmbedSpec, FileJob, chunk_and_embed_files

        jobs = []
        for path in files:
            if self._is_unchanged(path, known, seen_ids, report):
                progress.reading(path)
            else:
                own = known.ids_from_source(file_id(path))
                jobs.append(FileJob(path, {i: known.hashes[i] for i in own if i in known.hashes}))
        settings = self.store.settings
        spec = EmbedSpec(settings.embedding_model, settings.embedder_kind, settings.chunker, self.limits)
        for path, outcome in chunk_and_embed_files(jobs, spec, options):
            progress.reading(path)
            if isinstance(outcome, PreparedFile):
                outcome = _recheck_owners(path, outcome, known)
            yield self._accept(path, outcome, known, seen_ids, report)

    def _is_unchanged(self, path: Path, known: _KnownDocuments, seen_ids: set[str], report: AddReport) -> bool:
        """Whether the file's bytes are those indexed (it is then counted and seen, and not read again)."""
        document_id = file_id(path)
        if path.suffix.lower() != ".jsonl" and known.source_of(document_id) == document_id:
            # Unchanged files are recognised by their bytes' hash, without parsing them again.
            try:
                if known.hashes[document_id] == file_sha256(path):
                    seen_ids.add(document_id)
                    report.unchanged += 1
                    return True
            except OSError:
                pass  # load_file reports the problem in its own words
        return False

    def _accept(
        self,
        path: Path,
        prepared: PreparedFile | LoadError,
        known: _KnownDocuments,
        seen_ids: set[str],
        report: AddReport,
    ) -> list[_PendingDocument]:
        """The file's new or changed documents; unchanged, failed and refused ones go in the report."""
        document_id = file_id(path)
        if isinstance(prepared, LoadError):
            report.failed.append(prepared)
            seen_ids.update(known.ids_from_source(document_id))  # keep what was indexed before
            return []
        seen_ids.update(prepared.unchanged)
        report.unchanged += len(prepared.unchanged)
        report.failed.extend(prepared.refused)
        if prepared.refused:
            seen_ids.update(known.ids_from_source(document_id))
        for item in prepared.changed:
            seen_ids.add(item.document.id)
            known.claim(item.document)
        return prepared.changed

    def prepare_file(self, path: Path, known: _KnownDocuments | None = None) -> PreparedFile:
        """Load one file and chunk its new or changed documents, guarded and bounded (see :func:`load_and_chunk`)."""
        return load_and_chunk(path, self.chunker, self.limits, known or _KnownDocuments(self.store))

    def _commit(self, batch: list[_PendingDocument], report: AddReport, progress: IngestProgress) -> None:
        """Embed a batch's new chunks (reusing stored vectors for unchanged text) and write it in one transaction."""
        if not batch:
            return
        to_embed: list[str] = []
        vectors_per_document: list[list[np.ndarray | None]] = []
        embedded_elsewhere = 0
        for item in batch:
            reusable = self.store.vectors_by_text(item.document.id) if item.is_update else {}
            vectors: list[np.ndarray | None] = []
            for position, chunk in enumerate(item.chunks):
                vector = reusable.get(chunk.text)
                if vector is not None:
                    report.chunks_reused += 1
                elif item.vectors is not None:
                    vector = item.vectors[position]
                    embedded_elsewhere += 1
                else:
                    to_embed.append(embedding_text(chunk, item.document.title))
                vectors.append(vector)
            vectors_per_document.append(vectors)
        fresh = iter(self._embed(to_embed, progress))
        writes = []
        for item, vectors in zip(batch, vectors_per_document):
            filled = [v if v is not None else next(fresh) for v in vectors]
            matrix = np.vstack(filled) if filled else np.zeros((0, self.store.settings.dimension), np.float32)
            writes.append((item.document, item.chunks, matrix))
            if item.is_update:
                report.updated += 1
            else:
                report.added += 1
        self.store.write_documents(writes)
        report.chunks_embedded += len(to_embed) + embedded_elsewhere
        progress.advance(sum(len(item.chunks) for item in batch) - len(to_embed))  # reused or embedded by Ray

    def _embed(self, texts: list[str], progress: IngestProgress) -> list[np.ndarray]:
        vectors: list[np.ndarray] = []
        step = max(EMBED_WINDOW, self.embedder.batch_size)
        for start in range(0, len(texts), step):
            vectors.extend(self.embedder.embed(texts[start : start + step]))
            progress.advance(min(step, len(texts) - start))
        return vectors

    def _prune(self, roots: Sequence[str | Path], seen_ids: set[str]) -> int:
        """Remove documents from the given roots that this run did not see, and those whose file is gone."""
        root_paths = [Path(root).resolve() for root in roots]
        doomed = []
        for document_id, source in self.store.document_sources().items():
            if document_id in seen_ids:
                continue
            source_path = Path(source)
            under_a_root = any(source_path == root or root in source_path.parents for root in root_paths)
            if under_a_root or not source_exists(source):
                doomed.append(document_id)
        return self.store.delete_documents(doomed)

    def add_documents(self, documents: Iterable[Document]) -> AddReport:
        """Chunk, embed and store already-loaded documents (used to re-embed a whole index)."""
        started = time.perf_counter()
        report = AddReport()
        with IngestProgress(enabled=self.show_progress) as progress, BackgroundCommits(self._commit) as commits:
            progress.start_embedding(0)
            batch = _Batch()
            for document in documents:
                item = _PendingDocument(document, self.chunker.split(document), False)
                progress.add_chunks(len(item.chunks))
                if batch.add(item) >= self.commit_every:
                    commits.submit(batch.take(), report, progress)
            commits.submit(batch.take(), report, progress)
        self.store.save()
        report.seconds = time.perf_counter() - started
        return report


@dataclass
class _Batch:
    """Pending documents waiting to be embedded and committed together."""

    items: list[_PendingDocument] = field(default_factory=list)
    chunks: int = 0

    def add(self, item: _PendingDocument) -> int:
        """Add one document; returns the chunks now waiting."""
        self.items.append(item)
        self.chunks += len(item.chunks)
        return self.chunks

    def take(self) -> list[_PendingDocument]:
        items, self.items, self.chunks = self.items, [], 0
        return items


class _KnownDocuments:
    """The index's document ids with their hash and source, read once at the start of a run (under
    the write lock), plus the documents this run has claimed, so ids from two sources never
    overwrite each other."""

    def __init__(self, store: Store) -> None:
        self.hashes: dict[str, str] = {}
        self._sources: dict[str, str] = {}
        self._by_source: dict[str, list[str]] | None = None  # built when a file fails
        shared: dict[str, str] = {}  # one string per source: a corpus file's many documents share it
        for document_id, sha256, source in store.document_rows():
            self.hashes[document_id] = sha256
            self._sources[document_id] = shared.setdefault(source, source)

    def source_of(self, document_id: str) -> str | None:
        return self._sources.get(document_id)

    def claim(self, document: Document) -> None:
        self._sources[document.id] = document.source
        if self._by_source is not None:
            self._by_source.setdefault(document.source, []).append(document.id)

    def ids_from_source(self, source: str) -> list[str]:
        """The stored documents of ``source`` (what a file that failed this time had indexed before)."""
        if self._by_source is None:
            self._by_source = {}
            for document_id, owner in self._sources.items():
                self._by_source.setdefault(owner, []).append(document_id)
        return self._by_source.get(source, [])


def _recheck_owners(path: Path, prepared: PreparedFile, known: _KnownDocuments) -> PreparedFile:
    """``prepared`` with the documents whose id another source holds moved to ``refused`` (what
    :func:`load_and_chunk` does when it is given every id of the index, as in this process)."""
    changed = []
    for item in prepared.changed:
        owner = known.source_of(item.document.id)
        if owner is not None and owner != item.document.source:
            prepared.refused.append(_collision(path, item.document, owner))
        else:
            item.is_update = owner is not None
            changed.append(item)
    prepared.changed = changed
    return prepared


def _collision(path: Path, document: Document, owner: str) -> LoadError:
    """The error for a document whose id belongs to another source (a corpus record named like a file)."""
    line = document.metadata.get("line")
    where = f"line {line}: " if line is not None else ""
    return LoadError(
        path,
        f"{where}document id {document.id!r} is already used by {owner}; not indexed "
        "(ids must be unique across sources: rename the record or remove the other document)",
    )


class BackgroundCommits:
    """Runs ``commit(*args)`` for each submitted batch on one background thread, in order.

    Why: reading and chunking the next files (on the caller's thread) then overlap the embedding and
    the SQLite write of the previous batch; the embedder's own worker threads keep the cores busy
    meanwhile. At most ``depth`` batches wait, so memory holds a few batches, not the whole run.
    The first error of a commit is raised by the next ``submit`` or on leaving the ``with`` block,
    and the batches after it are not committed (the ones before it are: each is a transaction).

    >>> done = []
    >>> with BackgroundCommits(done.append) as commits:
    ...     for number in range(3):
    ...         commits.submit(number)
    >>> done
    [0, 1, 2]
    """

    def __init__(self, commit: Callable[..., None], depth: int = 2) -> None:
        self._commit = commit
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="commit")
        self._slots = threading.BoundedSemaphore(depth)
        self._futures: list[Future[None]] = []

    def __enter__(self) -> Self:
        return self

    def submit(self, *args: object) -> None:
        self._raise_first_error()
        self._slots.acquire()  # wait while `depth` batches are queued
        future = self._executor.submit(self._commit, *args)
        future.add_done_callback(lambda _: self._slots.release())
        self._futures.append(future)

    def _raise_first_error(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._futures = [future for future in self._futures if not future.done()]

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None:
            for future in self._futures:
                future.cancel()
        self._executor.shutdown(wait=True)
        if exc_info[0] is None:
            for future in self._futures:
                future.result()  # re-raises a commit's error


def add_to_index(
    index_dir: IndexLocation,
    paths: Sequence[str | Path],
    *,
    model: str | None = None,
    chunker: ChunkerSettings | None = None,
    prune: bool = False,
    rebuild: bool = False,
    show_progress: bool = True,
    embedder: Embedder | None = None,
    embedder_kind: str | None = None,
    vector_index: str | None = None,
    follow_symlinks: bool = False,
    limits: IngestLimits | None = None,
    ray: RayOptions | None = None,
) -> AddReport:
    """Add ``paths`` to the index in ``index_dir`` (a folder or a Milvus URI, see ``index.stores``), creating it if needed.

    ``model``, ``embedder_kind`` (``onnx-int8``, ``onnx-fp32``, ``torch``) and ``chunker`` default to
    the index's own settings (or, for a new index, the defaults and ``$RAG_EMBEDDER``). Asking for
    other settings than an existing index has, or passing an ``embedder`` of another kind, raises
    ``SettingsMismatchError``, unless ``rebuild`` is set: then every stored document is re-embedded
    into a fresh index that replaces the old one only once it is complete. ``vector_index``
    (``auto``, ``flat``, ``ivf``) sets the kind of vector index, also on an existing index, where
    a change rebuilds it from the stored vectors before anything is added. ``follow_symlinks``
    follows symbolic links that lead outside the folders given (by default they are skipped and reported).
    ``limits`` bounds what one file may cost (default: ``IngestLimits.from_env()``); a file past
    one is reported as failed, with the limit, and the run goes on. ``ray`` (an
    :class:`index.ray_ingest.RayOptions`) has Ray Data's actors load, chunk and embed the files, on
    a local Ray or a cluster; this process still checks, writes and reports as without it.
    """
    location = parse_location(index_dir)
    exists = store_exists(location)
    if embedder_kind is not None:
        embedder_kind = parse_embedder_kind(embedder_kind)
    if vector_index is not None:
        check_vector_index_setting(vector_index)
    if embedder is not None:
        if embedder_kind is not None and embedder.kind != embedder_kind:
            raise ValueError(f"embedder is {embedder.kind}, but embedder_kind is {embedder_kind}")
        model, embedder_kind = model or embedder.model, embedder.kind
    if exists and not rebuild:
        store = open_store(location)
        _check_same_settings(store.settings, model, embedder_kind, chunker, store.location)
        embedder = embedder or load_embedder(store.settings.embedding_model, store.settings.embedder_kind)
        with store.writer_lock():
            if vector_index is not None:
                store.set_vector_index(vector_index)
            return Ingestor(store, embedder, show_progress, limits).add(
                paths, prune=prune, follow_symlinks=follow_symlinks, ray=ray
            )
    embedder = embedder or load_embedder(model or DEFAULT_MODEL, embedder_kind or default_embedder_kind())
    if vector_index is None:
        vector_index = read_store_settings(location).vector_index if exists else "auto"
    settings = IndexSettings(
        embedding_model=embedder.model,
        dimension=embedder.dimension,
        chunker=chunker or ChunkerSettings(),
        embedder=embedder.backend,
        precision=embedder.precision,
        vector_index=vector_index,
    )
    if not exists:
        missing = [path for path in paths if not Path(path).exists() and not Path(path).is_symlink()]
        if paths and len(missing) == len(paths):
            # Nothing to add: say so without leaving an empty index folder behind.
            return AddReport(failed=[LoadError(path, "no such file or directory") for path in missing])
        store = create_store(location, settings)
        with store.writer_lock():
            return Ingestor(store, embedder, show_progress, limits).add(
                paths, prune=prune, follow_symlinks=follow_symlinks, ray=ray
            )
    if isinstance(location, MilvusLocation):
        return _rebuild_milvus(location, paths, settings, embedder, prune, show_progress, follow_symlinks, limits, ray)
    return _rebuild(location, paths, settings, embedder, prune, show_progress, follow_symlinks, limits, ray)


def _check_same_settings(
    settings: IndexSettings,
    model: str | None,
    embedder_kind: str | None,
    chunker: ChunkerSettings | None,
    index_dir: str | Path,
) -> None:
    if model is not None and model != settings.embedding_model:
        raise SettingsMismatchError(
            f"{index_dir}: this index was built with embedding model {settings.embedding_model!r}, "
            f"not {model!r}; mixing models would give meaningless scores. Use --rebuild to re-embed "
            "everything with the new model, or another --index folder"
        )
    if embedder_kind is not None and embedder_kind != settings.embedder_kind:
        raise SettingsMismatchError(
            f"{index_dir}: this index was embedded with {settings.embedder_kind}, not {embedder_kind}; "
            "one index keeps one embedder's vectors. Use --rebuild to re-embed everything, or another --index folder"
        )
    if chunker is not None and chunker != settings.chunker:
        raise SettingsMismatchError(
            f"{index_dir}: this index was chunked with {settings.chunker}, not {chunker}; use --rebuild"
        )


def _carry_over(old_dir: Path, new_dir: Path) -> None:
    """Move what others keep in an index folder (uploaded files, the chat page's conversations and
    feedback) into its rebuilt copy: everything the new index did not make itself."""
    for entry in old_dir.iterdir():
        # The old store's SQLite journal files must stay behind: moved beside the new store.sqlite,
        # SQLite would replay the old write-ahead log onto the new database (a rebuild then kept
        # the old index's rows in place of the new ones).
        if entry.name.startswith(f"{STORE_NAME}-"):
            continue
        if not (new_dir / entry.name).exists():
            os.replace(entry, new_dir / entry.name)


def _rebuild(
    index_dir: Path,
    paths: Sequence[str | Path],
    settings: IndexSettings,
    embedder: Embedder,
    prune: bool,
    show_progress: bool,
    follow_symlinks: bool = False,
    limits: IngestLimits | None = None,
    ray: RayOptions | None = None,
) -> AddReport:
    """Build a fresh index beside the old one from its stored documents, then swap the folders."""
    old_store = IndexStore.open(index_dir, for_rebuild=True)
    staging = index_dir.with_name(f".{index_dir.name}.rebuild")
    shutil.rmtree(staging, ignore_errors=True)
    new_store = IndexStore.create(staging, settings)
    with old_store.writer_lock():
        report = _refill(old_store, new_store, embedder, paths, prune, show_progress, follow_symlinks, limits, ray)
        old_store.close()
        new_store.close()
        _carry_over(index_dir, staging)
        retired = index_dir.with_name(f".{index_dir.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(index_dir, retired)
        os.replace(staging, index_dir)
        shutil.rmtree(retired, ignore_errors=True)
    return report


def _rebuild_milvus(
    location: MilvusLocation,
    paths: Sequence[str | Path],
    settings: IndexSettings,
    embedder: Embedder,
    prune: bool,
    show_progress: bool,
    follow_symlinks: bool = False,
    limits: IngestLimits | None = None,
    ray: RayOptions | None = None,
) -> AddReport:
    """Build a fresh Milvus index in a staging collection from the stored documents, then put it in the old one's place."""
    from dataclasses import replace

    from index.milvus_store import MilvusStore, staging_collection

    old_store = MilvusStore.open(location)
    staging = replace(location, collection=staging_collection(location.collection))
    if store_exists(staging):
        MilvusStore.open(staging).drop()
    new_store = MilvusStore.create(staging, settings)
    with old_store.writer_lock():
        report = _refill(old_store, new_store, embedder, paths, prune, show_progress, follow_symlinks, limits, ray)
        # Past this mark an interrupted swap is finished by the next open (milvus_store._finish_interrupted_rebuild).
        new_store.mark_rebuild_complete()
        old_store.drop()
        old_store.close()
        new_store.rename(location.collection).close()
    return report


def _refill(
    old_store: Store,
    new_store: Store,
    embedder: Embedder,
    paths: Sequence[str | Path],
    prune: bool,
    show_progress: bool,
    follow_symlinks: bool,
    limits: IngestLimits | None,
    ray: RayOptions | None,
) -> AddReport:
    """Fill a rebuild's new store: the old store's documents (re-read from their files where they
    still exist), then ``paths``; both stores' kinds rebuild through this one function."""
    stored = (old_store.get_document(info.id) for info in old_store.documents())
    ingestor = Ingestor(new_store, embedder, show_progress, limits)
    re_embedded = ingestor.add_documents(_reread((d for d in stored if d is not None), ingestor))
    report = ingestor.add(paths, prune=prune, follow_symlinks=follow_symlinks, ray=ray)
    # The summary counts the re-embedded documents' chunks too (it used to say "0 chunks embedded").
    report.chunks_embedded += re_embedded.chunks_embedded
    report.seconds += re_embedded.seconds
    new_store.record_added_folders(old_store.added_folders())
    return report


def _reread(documents: Iterable[Document], ingestor: Ingestor) -> Iterator[Document]:
    """Stored documents for a rebuild, each read again from its file when that file is still there.

    Why: a rebuild also brings what newer loaders do (block structure, PDF furniture removed) to
    documents an older version added. The file is read with the same guards and limits as
    ``rag add``; a document whose file is gone or fails now keeps its stored text, classified from it.
    """
    reread: dict[str, dict[str, Document]] = {}
    for document in documents:
        source = Path(document.source)
        if document.source not in reread:
            try:
                prepared = ingestor.prepare_file(source) if source.is_file() else None
            except LoadError:
                prepared = None
            reread[document.source] = {p.document.id: p.document for p in prepared.changed} if prepared else {}
        fresh = reread[document.source].get(document.id)
        if fresh is not None:
            yield fresh
        else:
            if not document.blocks and document.metadata.get("format") != "jsonl":
                document.blocks = classify_blocks(document.text)
            yield document
