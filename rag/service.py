"""The functions every front end calls (the ``rag`` CLI, the chat page, the HTTP API, the MCP server).

Open the answer backends from settings, search, answer (streamed or whole), add files with a
per-file report, list and remove documents, keep feedback and saved conversations: one path under
all four, so a fix lands everywhere. The index itself is opened with :func:`rag.collection.open_collection`.

Usage::

    collection = open_collection("my-index")
    assistants = AssistantPool(configured_backends())
    passages = search(collection, "how are retries configured", k=5)
    answer = ask(collection, assistants, "How are retries configured?")
    result = add_uploads(collection, ["notes/meeting.md"])
    print(result.summary, [(f.file, f.status, f.reason) for f in result.files])

This module loads no LangChain, torch or web framework when imported; the answer chain is
imported when the first answer is asked for.
"""

from __future__ import annotations

import queue
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.ingest import AddReport, Ingestor
from index.loaders import SUPPORTED_SUFFIXES, LoadError, discover_files, file_id
from index.store import DocumentInfo, IndexStoreError
from rag.chatlog import ConversationStore, Feedback, FeedbackStore
from rag.collection import Collection
from rag.retrieval.retriever import SEARCH_MODES
from rag.types import Answer, AnswerDelta, Passage

if TYPE_CHECKING:
    from rag.answering.assistant import Assistant
    from rag.llm import LlmSettings

DEFAULT_K = 5
"""Passages an answer is drawn from: ``rag.answering.assistant.DEFAULT_K``, repeated so that importing
this module does not load LangChain (a test checks that the two agree)."""
MAX_K = 20
"""Most passages the page and the servers let one answer be given: more only slows the answerer."""
ANSWER_CONCURRENCY = 2
"""Answers computed at once across all users: the machine this was measured on has 2 cores, and
each answer holds an embedding pass and possibly an LLM call; more only queue inside torch."""
MAX_UPLOAD_MB = 50
"""Largest file the page and the HTTP API accept; bigger documents belong in ``rag add``."""
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# What uploads may be; .jsonl corpora are a command-line affair (``rag add``).
UPLOAD_SUFFIXES: tuple[str, ...] = tuple(sorted(SUPPORTED_SUFFIXES - {".jsonl"}))
EXTRACTIVE_LABEL = "Extractive (no language model)"

LlmFactory = Callable[[], Any]
Progress = Callable[[int, int, str], None]
"""Called as ``progress(done, total, file_name)`` before each file is added."""


class EmptyIndexError(ValueError):
    """The index holds no documents, so there is nothing to answer from."""


# ---- answer backends ---------------------------------------------------------------------------


@dataclass
class Backends:
    """Answer backends by label, the default first; each factory returns the LLM (None = extractive).

    An LLM is made on first use and kept, so a local model is loaded once for all requests.

    >>> extractive_only().labels
    ['Extractive (no language model)']
    """

    factories: dict[str, LlmFactory]
    _made: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def labels(self) -> list[str]:
        return list(self.factories)

    def label(self, wanted: str | None) -> str:
        """``wanted`` if it is a known backend, else the default."""
        return wanted if wanted in self.factories else self.labels[0]

    def llm(self, label: str | None) -> Any:
        label = self.label(label)
        with self._lock:
            if label not in self._made:
                self._made[label] = self.factories[label]()
            return self._made[label]


def extractive_only() -> Backends:
    return Backends({EXTRACTIVE_LABEL: lambda: None})


def backend_label(settings: LlmSettings) -> str:
    """How a configured LLM is named to users (the page's settings panel, ``/v1/models``).

    >>> from rag.llm import LlmSettings
    >>> backend_label(LlmSettings.parse("ollama:llama3.2"))
    'LLM: llama3.2 (ollama)'
    """
    return f"LLM: {settings.model or 'default model'} ({settings.backend})"


def configured_backends(spec: str | None = None) -> Backends:
    """The configured backend first (the default), then the extractive answerer.

    ``spec`` overrides the configuration like ``--llm`` (``openai:MODEL``, ``ollama:MODEL``,
    ``gguf:PATH``, ``extractive``). The model is made on first use, so a slow local model does not
    delay a server's start. Raises ``LlmConfigError`` for a broken configuration.
    """
    from rag.llm import load_llm_settings, make_chat_model

    settings = load_llm_settings(spec)
    extractive: dict[str, LlmFactory] = {EXTRACTIVE_LABEL: lambda: None}
    if settings.backend == "extractive":
        return Backends(extractive)
    return Backends({backend_label(settings): lambda: make_chat_model(settings), **extractive})


class AssistantPool:
    """Reusable ``Assistant`` objects per (index, backend).

    An Assistant keeps a cache of sentence vectors that makes follow-up questions fast, but the
    cache is not safe for two threads at once; so each Assistant serves one answer at a time and
    the pool keeps as many idle as answers may run concurrently.
    """

    def __init__(self, backends: Backends, size: int = ANSWER_CONCURRENCY) -> None:
        self.backends = backends
        self.size = size
        self._idle: dict[tuple[Path, str], queue.SimpleQueue[Assistant]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def borrow(
        self,
        collection: Collection,
        backend: str | None,
        k: int,
        mode: str,
        search_options: dict[str, Any] | None = None,
    ) -> Iterator[Assistant]:
        from rag.answering import assistant as answering  # LangChain loads with the first answer

        key = (collection.index_dir, self.backends.label(backend))
        with self._lock:
            idle = self._idle.setdefault(key, queue.SimpleQueue())
        try:
            chosen = idle.get_nowait()
        except queue.Empty:
            chosen = answering.Assistant(collection.retriever, self.backends.llm(key[1]), k=k, mode=mode)
        # k, mode and filters are per-request settings; the rest of the Assistant is reusable.
        chosen.k, chosen.mode, chosen.search_options = k, mode, dict(search_options or {})
        try:
            yield chosen
        finally:
            if idle.qsize() < self.size:
                idle.put(chosen)


# ---- searching and answering -------------------------------------------------------------------


def check_settings(k: int, mode: str, max_k: int | None = None) -> None:
    """Raise ``ValueError`` naming the setting when ``k`` or ``mode`` is out of range.

    >>> check_settings(3, "fuzzy")
    Traceback (most recent call last):
    ...
    ValueError: mode must be one of hybrid, dense, bm25; got 'fuzzy'
    """
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be one of {', '.join(SEARCH_MODES)}; got {mode!r}")
    if k < 1 or (max_k is not None and k > max_k):
        raise ValueError(f"k must be between 1 and {max_k}; got {k}" if max_k else f"k must be >= 1, got {k}")


def search(
    collection: Collection,
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    sources: Sequence[str] | None = None,
    document_ids: Sequence[str] | None = None,
    per_document: bool = False,
) -> list[Passage]:
    """The ``k`` best passages for ``query`` (see ``Retriever.search``). Raises ``ValueError`` for bad input."""
    if not query or not query.strip():
        raise ValueError("the query is empty")
    check_settings(k, mode)
    with collection.reading() as retriever:
        return retriever.search(
            query, k=k, mode=mode, sources=sources, document_ids=document_ids, per_document=per_document  # type: ignore[arg-type]
        )


def stream_answer(
    collection: Collection,
    assistants: AssistantPool,
    question: str,
    history: Sequence[Any] | None = None,
    *,
    k: int = DEFAULT_K,
    mode: str = "hybrid",
    backend: str | None = None,
    document_ids: Sequence[str] | None = None,
) -> Iterator[AnswerDelta]:
    """The answer as it is written: text deltas, then a last delta carrying the checked ``Answer``.

    ``history`` holds earlier messages as ``{"role", "content"}``; ``backend`` is a label of
    ``assistants.backends`` (None: the default); ``document_ids`` limits the passages to those
    documents. Raises ``ValueError`` for an empty question or bad settings, ``EmptyIndexError``
    when the index has no documents; a failing LLM raises what its client raises.
    """
    if not question or not question.strip():
        raise ValueError("the question is empty")
    check_settings(k, mode)
    options = {"document_ids": list(document_ids)} if document_ids is not None else None
    with collection.reading() as retriever:
        if retriever.store.counts()[0] == 0:
            raise EmptyIndexError(f"{collection.index_dir} has no documents yet: add some first")
        with assistants.borrow(collection, backend, k, mode, options) as assistant:
            yield from assistant.stream(question, list(history or []))


def ask(
    collection: Collection,
    assistants: AssistantPool,
    question: str,
    history: Sequence[Any] | None = None,
    **settings: Any,
) -> Answer:
    """The whole answer of :func:`stream_answer` (same arguments)."""
    answer = None
    for delta in stream_answer(collection, assistants, question, history, **settings):
        answer = delta.answer or answer
    assert answer is not None  # the stream always ends with the Answer
    return answer


# ---- documents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileReport:
    """What happened to one file: ``status`` is added, updated, unchanged, skipped, failed or rejected.

    >>> FileReport("notes.txt", "failed", "empty file (no text)").line()
    'failed  notes.txt: empty file (no text)'
    """

    file: str
    status: str
    reason: str = ""
    document_id: str | None = None

    def line(self) -> str:
        """The file as ``rag add`` reports it, on one line (a newline in a file name is written ``\\n``)."""
        return _one_line(f"{self.status:<7} {self.file}" + (f": {self.reason}" if self.reason else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "status": self.status, "reason": self.reason, "document_id": self.document_id}


def _one_line(text: str) -> str:
    """``text`` with control characters (a newline or escape code in a file name) written as escapes."""
    return _CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], text)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class AddResult:
    """What adding files did: the merged counts, and a report for each file that was given or found."""

    report: AddReport = field(default_factory=AddReport)
    files: list[FileReport] = field(default_factory=list)

    @classmethod
    def of(cls, report: AddReport) -> AddResult:
        """A run of ``rag add``: counts, and the files that were skipped or failed, with why."""
        files = [FileReport(s.path, "skipped", s.reason) for s in report.skipped]
        files += [FileReport(f.path, "failed", f.reason) for f in report.failed]
        return cls(report, files)

    @property
    def not_added(self) -> list[FileReport]:
        return [f for f in self.files if f.status in ("skipped", "failed", "rejected")]

    @property
    def summary(self) -> str:
        return add_summary(self.report, rejected=sum(f.status == "rejected" for f in self.files))

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        counts = ("added", "updated", "unchanged", "removed", "chunks_embedded", "chunks_reused")
        return {
            **{name: getattr(report, name) for name in counts},
            "not_added": len(self.not_added),
            "seconds": round(report.seconds, 3),
            "summary": self.summary,
            "files": [f.to_dict() for f in self.files],
        }


def add_summary(report: AddReport, rejected: int = 0) -> str:
    """The one-line summary ``rag add`` prints (and the HTTP API and MCP tools return).

    >>> add_summary(AddReport(added=2, chunks_embedded=10, seconds=2.0))
    'added 2, updated 0, unchanged 0, removed 0, skipped 0, failed 0; 10 chunks embedded (5.0/s), 0 reused, 2.0 s'
    """
    refused = f", rejected {rejected}" if rejected else ""
    return (
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"removed {report.removed}, skipped {len(report.skipped)}, failed {len(report.failed)}{refused}; "
        f"{report.chunks_embedded} chunks embedded ({report.chunks_per_second:.1f}/s), "
        f"{report.chunks_reused} reused, {report.seconds:.1f} s"
    )


def rejection_reason(path: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> str | None:
    """Why ``path`` cannot be uploaded, or None when it can.

    >>> rejection_reason(Path("setup.exe"))
    'unsupported type .exe (supported: .docx, .htm, .html, .markdown, .md, .pdf, .txt)'
    """
    suffix = path.suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return f"unsupported type {suffix or '(none)'} (supported: {', '.join(UPLOAD_SUFFIXES)})"
    try:
        size = path.stat().st_size
    except OSError as error:
        return f"cannot read the upload ({error.strerror or error})"
    if size > max_bytes:
        return f"{megabytes(size)} is over the {megabytes(max_bytes)} limit; add it with `rag add` instead"
    return None


def megabytes(size: int) -> str:
    """A size for people to read.

    >>> megabytes(52_428_800), megabytes(10_485), megabytes(1_572_864)
    ('50 MB', '0.01 MB', '1.5 MB')
    """
    return f"{size / 1024 / 1024:.3g} MB"


def add_uploads(
    collection: Collection,
    uploads: Sequence[str | Path],
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    progress: Progress | None = None,
) -> AddResult:
    """Copy accepted uploads into the index's ``uploads/`` folder and index them one file at a time.

    The copy is needed because a document's id is its file path, and an upload's temporary file
    goes away. Files of an unsupported type or over ``max_bytes`` are rejected before indexing; a
    file that cannot be indexed leaves no copy behind. Names are reduced to their last part.
    """
    result = AddResult()
    accepted: list[Path] = []
    for upload in uploads:
        path = Path(upload)
        reason = rejection_reason(path, max_bytes)
        if reason:
            result.files.append(FileReport(path.name, "rejected", reason))
        else:
            accepted.append(path)
    collection.uploads_dir.mkdir(parents=True, exist_ok=True)
    for done, path in enumerate(accepted):
        if progress:
            progress(done, len(accepted), path.name)
        target = collection.uploads_dir / path.name
        shutil.copyfile(path, target)
        outcome = _add_one(collection, target, path.name, result)
        if outcome.status in ("failed", "skipped"):
            target.unlink(missing_ok=True)  # a file we could not index should not linger in uploads/
    return result


def add_paths(collection: Collection, paths: Sequence[str | Path], progress: Progress | None = None) -> AddResult:
    """Add files and folders (walked like ``rag add``) where they are, one file at a time."""
    files, skipped, failed = discover_files(paths)
    result = AddResult.of(AddReport(skipped=skipped, failed=failed))
    for done, path in enumerate(files):
        if progress:
            progress(done, len(files), path.name)
        _add_one(collection, path, str(path), result)
    return result


def _add_one(collection: Collection, path: Path, shown_as: str, result: AddResult) -> FileReport:
    """Index one file under the write lock (so questions wait for one file, not all); record its outcome."""
    with collection.writing() as retriever:
        store = retriever.store
        try:
            with store.writer_lock():
                report = Ingestor(store, retriever.embedder, show_progress=False).add([path])
        except IndexStoreError as error:
            # Another process (``rag add``) holds the index: say so for this file, go on with the rest.
            report = AddReport(failed=[LoadError(path, str(error).split(": ", 1)[-1])])
    outcome = _outcome(report, shown_as, file_id(path))
    _merge(result.report, report)
    result.files.append(outcome)
    return outcome


def _outcome(report: AddReport, shown_as: str, document_id: str) -> FileReport:
    if report.failed:
        return FileReport(shown_as, "failed", report.failed[0].reason)
    if report.skipped:
        return FileReport(shown_as, "skipped", report.skipped[0].reason)
    status = "added" if report.added else "updated" if report.updated else "unchanged"
    return FileReport(shown_as, status, document_id=document_id)


def _merge(total: AddReport, part: AddReport) -> None:
    for name in ("added", "updated", "unchanged", "removed", "chunks_embedded", "chunks_reused"):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.seconds += part.seconds
    total.skipped.extend(part.skipped)
    total.failed.extend(part.failed)


def list_documents(collection: Collection) -> list[DocumentInfo]:
    """Every document in the index, ordered by source."""
    with collection.reading() as retriever:
        return retriever.store.documents()


def remove_documents(collection: Collection, document_ids: Sequence[str]) -> list[DocumentInfo]:
    """Remove documents by id; returns those that were there. Their uploaded copies go too.

    Raises ``IndexStoreError`` when another process is writing to the index.
    """
    with collection.writing() as retriever:
        wanted = set(document_ids)
        present = [info for info in retriever.store.documents() if info.id in wanted]
        if present:
            retriever.delete([info.id for info in present])
    uploads = collection.uploads_dir.resolve()
    for info in present:
        source = Path(info.source)
        if source.parent == uploads:
            source.unlink(missing_ok=True)
    return present


def added_folders(collection: Collection) -> list[str]:
    """The folders the collection's documents were added from (to show sources relative to them)."""
    with collection.reading() as retriever:
        return retriever.store.added_folders()


# ---- feedback and saved conversations ------------------------------------------------------------


def record_feedback(collection: Collection, feedback: Feedback) -> Feedback:
    """Keep a judgement of an answer beside the index it was asked of (``rag eval --from-feedback`` reads it).

    Raises ``ChatLogError`` (a ``ValueError``) for an unknown rating or a missing question.
    """
    return FeedbackStore(collection.index_dir).record(feedback)


def withdraw_feedback(collection: Collection, feedback_id: str) -> bool:
    """Forget a judgement; False when it was not there."""
    return FeedbackStore(collection.index_dir).delete(feedback_id)


def conversations(index_dir: str | Path) -> ConversationStore:
    """The saved conversations kept in the index folder ``index_dir`` (per user: the page with a login)."""
    return ConversationStore(index_dir)
