"""Ray ingestion (``rag add --ray``): Ray Data actors load, chunk and embed files; the caller writes them.

Each actor of the pool holds one embedder (the index's own kind: int8 ONNX by default) and one
chunker, and calls :func:`index.ingest.load_and_chunk`, the function the single-process path calls,
so a chunk's id and text are the same by construction. The driver (:class:`index.ingest.Ingestor`)
keeps everything that touches the store: the hash check that skips unchanged files before anything
is sent to Ray, the id checks, the batched writes, the progress bars and the summary.

Ray is imported here only, and only when called: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from index.chunking import ChunkerSettings, embedding_text
from index.embedding import load_embedder
from index.ingest import PreparedFile, load_and_chunk, make_chunker
from index.limits import IngestLimits
from index.loaders import LoadError, file_id

log = logging.getLogger(__name__)

RAY_EXTRA_HINT = 'pip install -e ".[ray]" (or pip install "rag-assistant[ray]")'
LOCAL_OBJECT_STORE_MB = 128
"""Shared memory of a local Ray: each file's result (its documents, chunks and vectors: about 2 kB a
chunk) passes through it once; Ray spills to disk past it."""
MAX_BLOCKS = 1_000
"""Files are cut into at most this many blocks: one file a block balances the actors best, and a
block costs the scheduler a little each."""


class RayNotInstalledError(RuntimeError):
    """``--ray`` was asked for, but Ray Data is not installed."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run.

    ``address``: None uses ``$RAY_ADDRESS`` when set, else starts a local Ray on this machine for
    the run and stops it afterwards; ``"auto"`` joins the cluster this machine belongs to (after
    ``ray start``), as does a head's ``"host:6379"``. A Ray Client address (``ray://``) is refused:
    Ray Data does not run through it. ``actors``: embedding actors, one CPU each (default: one per
    CPU of the cluster). ``cpus`` and ``object_store_mb`` bound a local Ray only (default: this
    machine's cores, 128 MB).
    """

    address: str | None = None
    actors: int | None = None
    cpus: int | None = None
    object_store_mb: int = LOCAL_OBJECT_STORE_MB

    def __post_init__(self) -> None:
        for name in ("actors", "cpus"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        check_address(self.address)
        if self.object_store_mb < 80:
            raise ValueError(f"object_store_mb must be >= 80 (Ray's minimum is 75 MB), got {self.object_store_mb}")


@dataclass(frozen=True)
class EmbedSpec:
    """What an actor needs to chunk and embed as the index does: its model, embedder, chunker and limits."""

    model: str
    embedder_kind: str
    chunker: ChunkerSettings
    limits: IngestLimits


@dataclass(frozen=True)
class FileJob:
    """One file for an actor, with the stored hashes of its own documents (so unchanged records of a
    ``.jsonl`` corpus are not embedded again)."""

    path: Path
    known_hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Failure:
    """A file an actor could not load (sent instead of the ``LoadError``, which does not pickle)."""

    path: str
    reason: str


class _SourceView:
    """What an actor knows of the index: the stored documents of one source and their hashes.

    Whether an id belongs to another source is checked again by the driver, which knows them all.
    """

    def __init__(self, source: str, hashes: dict[str, str]) -> None:
        self.hashes = hashes
        self._source = source

    def source_of(self, document_id: str) -> str | None:
        return self._source if document_id in self.hashes else None


def import_ray() -> ModuleType:
    """The ``ray`` module with Ray Data, or :class:`RayNotInstalledError` naming the extra to install."""
    try:
        import ray
        import ray.data  # Ray Data is the part we need; plain `ray` lacks it
    except ImportError as error:
        raise RayNotInstalledError(f"--ray needs Ray Data, which is not installed ({error}): {RAY_EXTRA_HINT}") from None
    return ray


class ChunkAndEmbed:
    """The actors' callable: loads, chunks and embeds the files of a batch, with one model an actor.

    A batch is ``{"path": [file path as bytes], "known": [JSON of {document id: sha256}]}``; the
    result adds ``"outcome"``: a :class:`PreparedFile` whose changed documents carry their vectors,
    or a failure with its one-line reason.
    """

    def __init__(self, spec: EmbedSpec) -> None:
        self.spec = spec
        # One thread: the actor was given one CPU, and a thread more per actor only contends.
        self.embedder = load_embedder(spec.model, spec.embedder_kind, workers=1)
        self.chunker = make_chunker(self.embedder, spec.chunker, spec.limits)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        outcomes = [
            self.process(Path(os.fsdecode(raw)), json.loads(known)) for raw, known in zip(batch["path"], batch["known"])
        ]
        return {"path": batch["path"], "outcome": outcomes}

    def process(self, path: Path, known_hashes: dict[str, str]) -> PreparedFile | _Failure:
        """One file's new or changed documents with their vectors, or why it could not be loaded."""
        try:
            prepared = load_and_chunk(path, self.chunker, self.spec.limits, _SourceView(file_id(path), known_hashes))
        except LoadError as error:
            return _Failure(error.path, error.reason)
        texts = [embedding_text(chunk, item.document.title) for item in prepared.changed for chunk in item.chunks]
        vectors = self.embedder.embed(texts)
        start = 0
        for item in prepared.changed:
            item.vectors = vectors[start : start + len(item.chunks)]
            start += len(item.chunks)
        return prepared


def chunk_and_embed_files(
    jobs: Sequence[FileJob], spec: EmbedSpec, options: RayOptions
) -> Iterator[tuple[Path, PreparedFile | LoadError]]:
    """Each file's documents, chunked and embedded by a pool of Ray actors, in the order of ``jobs``.

    A file that cannot be loaded gives its ``LoadError`` (the run goes on); an error that means a bug
    (in the embedder, in Ray) is raised.
    """
    if not jobs:
        return
    ray = import_ray()
    with ray_session(ray, options):
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the driver claims ids in the order files were given
        context.enable_progress_bars = False  # the driver draws its own
        context.print_on_execution_start = False
        actors = options.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = min(actors, len(jobs))  # an actor more than there are files would only load a model
        rows = [{"path": os.fsencode(job.path), "known": json.dumps(job.known_hashes)} for job in jobs]
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
        # On a local Ray an actor that died would die again (this machine is all there is), and with
        # restarts on, Ray logs an error line about them on every run; on a cluster they stay on, so an
        # actor on a lost node is started again elsewhere. Ray 2.60 names no parameter for it and
        # warns that its generic remote arguments will go in 2.64 (the extra pins 2.60).
        restarts = {"max_restarts": 0} if _is_local(options) else {}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*is deprecated")
            results = dataset.map_batches(
                ChunkAndEmbed,
                fn_constructor_kwargs={"spec": spec},
                batch_size=1,  # one file a call: files differ a thousandfold in size, so idle actors take the next
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=1,
                **restarts,
            )
        for row in results.iter_rows():
            path = Path(os.fsdecode(row["path"]))
            outcome = row["outcome"]
            yield path, outcome if isinstance(outcome, PreparedFile) else LoadError(outcome.path, outcome.reason)


def check_address(address: str | None) -> None:
    """Raise ``ValueError`` for a Ray Client address (``ray://``), which Ray Data cannot use.

    Tried with Ray 2.60 against a head on this machine: through Ray Client, Ray Data's executor
    fails with "'Worker' object has no attribute 'core_worker'".
    """
    if address is not None and address.startswith("ray://"):
        raise ValueError(
            f"Ray address {address}: Ray Data does not run through Ray Client (ray://); run rag add on a "
            "machine of the cluster with --ray-address auto, or submit it as a Ray job (ray job submit)"
        )


def _address(options: RayOptions) -> str | None:
    return options.address or os.environ.get("RAY_ADDRESS") or None


def _is_local(options: RayOptions) -> bool:
    """Whether the run starts its own Ray on this machine (rather than joining a cluster)."""
    return _address(options) is None


@contextmanager
def ray_session(ray: ModuleType, options: RayOptions) -> Iterator[None]:
    """Connect to Ray for the block: a local Ray bounded to this machine, or the cluster at ``options.address``.

    A session the caller already opened (``ray.init`` in an app or a test) is used as it is and left open.
    """
    # Ray Data logs each run's plan and progress at INFO, and that its own progress bars are off at
    # WARNING; the CLI draws its own bars and prints failures itself.
    data_log = logging.getLogger("ray.data")
    data_log_level = data_log.level
    data_log.setLevel(logging.ERROR)
    try:
        if ray.is_initialized():
            yield
        else:
            with _connected(ray, options):
                yield
    finally:
        data_log.setLevel(data_log_level)


@contextmanager
def _connected(ray: ModuleType, options: RayOptions) -> Iterator[None]:
    # No usage statistics are sent (Ray reports them by default); set before Ray starts its processes.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    address = _address(options)
    check_address(address)
    if address is None:
        ray.init(
            num_cpus=options.cpus or os.cpu_count() or 1,
            object_store_memory=options.object_store_mb * 1024 * 1024,
            include_dashboard=False,
            **quiet,
        )
    else:
        ray.init(address=address, **quiet)
    try:
        yield
    finally:
        ray.shutdown()
