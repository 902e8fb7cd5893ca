"""Add files to an index: load, chunk, embed and commit in small batches, skipping what is unchanged.

A file whose content hash is unchanged is not read again; a changed file's chunks are replaced
(chunks whose text did not change keep their stored vectors); ``prune`` removes documents whose
files are gone. Each batch is one SQLite transaction, so a killed run keeps every finished batch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from index.chunking import Chunker, ChunkerSettings, embedding_text
from index.embedding import DEFAULT_MODEL, Embedder, default_embedder_kind, load_embedder, parse_embedder_kind
from index.loaders import LoadError, SkippedFile, discover_files, load_file
from index.progress import IngestProgress
from index.store import (
    MANIFEST_NAME,
    IndexSettings,
    IndexStore,
    SettingsMismatchError,
)
from index.structure import classify_blocks
from index.types import Chunk, Document

COMMIT_EVERY_CHUNKS = 64
"""Chunks embedded per transaction: small enough that a killed run loses seconds of work."""
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Ingestor:
    """Adds files to one open index with one embedding model.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "note.txt").write_text("The meeting moved to Thursday at noon.")
    >>> report = add_to_index(folder / "index", [folder / "note.txt"], show_progress=False)
    >>> report.added, report.chunks_embedded
    (1, 1)
    """

    def __init__(self, store: IndexStore, embedder: Embedder, show_progress: bool = True) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = Chunker(embedder.count_tokens, store.settings.chunker)
        self.show_progress = show_progress

    def add(self, paths: Sequence[str | Path], prune: bool = False) -> AddReport:
        """Add, update or skip every supported file under ``paths``; optionally prune vanished ones."""
        started = time.perf_counter()
        report = AddReport()
        files, report.skipped, report.failed = discover_files(paths)
        known_hashes = self.store.document_hashes()
        seen_ids: set[str] = set()
        pending: list[_PendingDocument] = []
        with IngestProgress(enabled=self.show_progress) as progress:
            progress.start_reading(len(files))
            for path in files:
                progress.reading(path)
                self._read_file(path, known_hashes, seen_ids, pending, report)
            progress.start_embedding(sum(len(p.chunks) for p in pending))
            self._embed_and_commit(pending, report, progress)
            if prune:
                report.removed = self._prune(paths, seen_ids)
        self.store.save()
        report.seconds = time.perf_counter() - started
        return report

    def _read_file(
        self,
        path: Path,
        known_hashes: dict[str, str],
        seen_ids: set[str],
        pending: list[_PendingDocument],
        report: AddReport,
    ) -> None:
        document_id = str(path.resolve())
        if path.suffix.lower() != ".jsonl" and document_id in known_hashes:
            # Unchanged files are recognised by their bytes' hash, without parsing them again.
            try:
                if known_hashes[document_id] == file_sha256(path):
                    seen_ids.add(document_id)
                    report.unchanged += 1
                    return
            except OSError:
                pass  # load_file below reports the problem in its own words
        try:
            documents = load_file(path)
        except LoadError as error:
            report.failed.append(error)
            seen_ids.update(_ids_from_source(self.store, path))  # keep what was indexed before
            return
        for document in documents:
            seen_ids.add(document.id)
            stored_hash = known_hashes.get(document.id)
            if stored_hash == document.metadata.get("sha256"):
                report.unchanged += 1
                continue
            pending.append(_PendingDocument(document, self.chunker.split(document), stored_hash is not None))

    def _embed_and_commit(self, pending: list[_PendingDocument], report: AddReport, progress: IngestProgress) -> None:
        with BackgroundCommits(self._commit) as commits:
            batch: list[_PendingDocument] = []
            batch_chunks = 0
            for item in pending:
                batch.append(item)
                batch_chunks += len(item.chunks)
                if batch_chunks >= COMMIT_EVERY_CHUNKS:
                    commits.submit(batch, report, progress)
                    batch, batch_chunks = [], 0
            commits.submit(batch, report, progress)

    def _commit(self, batch: list[_PendingDocument], report: AddReport, progress: IngestProgress) -> None:
        """Embed a batch's new chunks (reusing stored vectors for unchanged text) and write it in one transaction."""
        if not batch:
            return
        to_embed: list[str] = []
        vectors_per_document: list[list[np.ndarray | None]] = []
        for item in batch:
            reusable = self.store.vectors_by_text(item.document.id) if item.is_update else {}
            vectors: list[np.ndarray | None] = []
            for chunk in item.chunks:
                vector = reusable.get(chunk.text)
                if vector is None:
                    to_embed.append(embedding_text(chunk, item.document.title))
                else:
                    report.chunks_reused += 1
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
        report.chunks_embedded += len(to_embed)
        progress.advance(sum(len(item.chunks) for item in batch) - len(to_embed))  # reused vectors

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
            if under_a_root or not source_path.exists():
                doomed.append(document_id)
        return self.store.delete_documents(doomed)

    def add_documents(self, documents: Iterable[Document]) -> AddReport:
        """Chunk, embed and store already-loaded documents (used to re-embed a whole index)."""
        started = time.perf_counter()
        report = AddReport()
        pending = [_PendingDocument(d, self.chunker.split(d), False) for d in documents]
        with IngestProgress(enabled=self.show_progress) as progress:
            progress.start_embedding(sum(len(p.chunks) for p in pending))
            self._embed_and_commit(pending, report, progress)
        self.store.save()
        report.seconds = time.perf_counter() - started
        return report


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


def _ids_from_source(store: IndexStore, path: Path) -> list[str]:
    source = str(path.resolve())
    return [doc_id for doc_id, doc_source in store.document_sources().items() if doc_source == source]


def add_to_index(
    index_dir: str | Path,
    paths: Sequence[str | Path],
    *,
    model: str | None = None,
    chunker: ChunkerSettings | None = None,
    prune: bool = False,
    rebuild: bool = False,
    show_progress: bool = True,
    embedder: Embedder | None = None,
    embedder_kind: str | None = None,
) -> AddReport:
    """Add ``paths`` to the index in ``index_dir``, creating it if needed.

    ``model``, ``embedder_kind`` (``onnx-int8``, ``onnx-fp32``, ``torch``) and ``chunker`` default to
    the index's own settings (or, for a new index, the defaults and ``$RAG_EMBEDDER``). Asking for
    other settings than an existing index has, or passing an ``embedder`` of another kind, raises
    ``SettingsMismatchError``, unless ``rebuild`` is set: then every stored document is re-embedded
    into a fresh index that replaces the old one only once it is complete.
    """
    index_dir = Path(index_dir)
    exists = (index_dir / MANIFEST_NAME).is_file()
    if embedder_kind is not None:
        embedder_kind = parse_embedder_kind(embedder_kind)
    if embedder is not None:
        if embedder_kind is not None and embedder.kind != embedder_kind:
            raise ValueError(f"embedder is {embedder.kind}, but embedder_kind is {embedder_kind}")
        model, embedder_kind = model or embedder.model, embedder.kind
    if exists and not rebuild:
        store = IndexStore.open(index_dir)
        _check_same_settings(store.settings, model, embedder_kind, chunker, index_dir)
        embedder = embedder or load_embedder(store.settings.embedding_model, store.settings.embedder_kind)
        with store.writer_lock():
            return Ingestor(store, embedder, show_progress).add(paths, prune=prune)
    embedder = embedder or load_embedder(model or DEFAULT_MODEL, embedder_kind or default_embedder_kind())
    settings = IndexSettings(
        embedding_model=embedder.model,
        dimension=embedder.dimension,
        chunker=chunker or ChunkerSettings(),
        embedder=embedder.backend,
        precision=embedder.precision,
    )
    if not exists:
        store = IndexStore.create(index_dir, settings)
        with store.writer_lock():
            return Ingestor(store, embedder, show_progress).add(paths, prune=prune)
    return _rebuild(index_dir, paths, settings, embedder, prune, show_progress)


def _check_same_settings(
    settings: IndexSettings,
    model: str | None,
    embedder_kind: str | None,
    chunker: ChunkerSettings | None,
    index_dir: Path,
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


def _rebuild(
    index_dir: Path,
    paths: Sequence[str | Path],
    settings: IndexSettings,
    embedder: Embedder,
    prune: bool,
    show_progress: bool,
) -> AddReport:
    """Build a fresh index beside the old one from its stored documents, then swap the folders."""
    old_store = IndexStore.open(index_dir, for_rebuild=True)
    staging = index_dir.with_name(f".{index_dir.name}.rebuild")
    shutil.rmtree(staging, ignore_errors=True)
    new_store = IndexStore.create(staging, settings)
    with old_store.writer_lock():
        stored = (old_store.get_document(info.id) for info in old_store.documents())
        ingestor = Ingestor(new_store, embedder, show_progress)
        re_embedded = ingestor.add_documents(_reread(d for d in stored if d is not None))
        report = ingestor.add(paths, prune=prune)
        # The summary counts the re-embedded documents' chunks too (it used to say "0 chunks embedded").
        report.chunks_embedded += re_embedded.chunks_embedded
        report.seconds += re_embedded.seconds
        old_store.close()
        new_store.close()
        retired = index_dir.with_name(f".{index_dir.name}.old")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(index_dir, retired)
        os.replace(staging, index_dir)
        shutil.rmtree(retired, ignore_errors=True)
    return report


def _reread(documents: Iterable[Document]) -> Iterator[Document]:
    """Stored documents for a rebuild, each read again from its file when that file is still there.

    Why: a rebuild also brings what newer loaders do (block structure, PDF furniture removed) to
    documents that were added by an older version; a document whose file is gone keeps its stored
    text, classified from that text.
    """
    reread: dict[str, dict[str, Document]] = {}
    for document in documents:
        source = Path(document.source)
        if document.source not in reread:
            try:
                loaded = load_file(source) if source.is_file() else []
            except LoadError:
                loaded = []
            reread[document.source] = {d.id: d for d in loaded}
        fresh = reread[document.source].get(document.id)
        if fresh is not None:
            yield fresh
        else:
            if not document.blocks and document.metadata.get("format") != "jsonl":
                document.blocks = classify_blocks(document.text)
            yield document
