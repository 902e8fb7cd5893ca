"""Bounds on the work one file may cause during ingestion: its size, its time, its chunks, a chunk's length.

A hostile or broken file (a 50 MB line, a DOCX of three million empty paragraphs, a page of a
million tags) must cost one line in the report, not the machine's memory or the whole run.
The limits are configuration: ``IngestLimits()`` holds the defaults, ``IngestLimits.from_env()``
reads the ``RAG_MAX_*`` variables below, and ``rag add --max-file-mb/--max-seconds-per-file`` set
the two a user most often needs.

>>> limits = IngestLimits(max_file_mb=5)
>>> limits.max_file_bytes(".pdf") // 1_000_000, limits.max_file_bytes(".txt") // 1_000_000
(5, 5)
>>> IngestLimits().max_file_bytes(".txt") // 1_000_000
20
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path

ENV_MAX_FILE_MB = "RAG_MAX_FILE_MB"
ENV_MAX_SECONDS = "RAG_MAX_SECONDS_PER_FILE"
ENV_MAX_CHUNKS = "RAG_MAX_CHUNKS_PER_DOCUMENT"
ENV_MAX_CHUNK_CHARS = "RAG_MAX_CHUNK_CHARS"
ENV_MAX_HTML_TAGS = "RAG_MAX_HTML_TAGS"

DEFAULT_FILE_MB: dict[str, float] = {
    # Text formats become text byte for byte, and their parsers hold several copies: a 50 MB
    # one-line text file once peaked at 3.6 GB. Containers (PDF, DOCX) are compressed.
    ".txt": 20,
    ".md": 20,
    ".markdown": 20,
    ".html": 20,
    ".htm": 20,
    ".pdf": 100,
    ".docx": 50,
    # A BEIR corpus is one file of many documents (SciFact's is 8 MB); it is held whole while read.
    ".jsonl": 200,
}


class LimitExceeded(Exception):
    """One file went past a limit; the ingestion turns it into a LoadError line naming the file."""


@dataclass(frozen=True)
class IngestLimits:
    """What one file may cost. ``max_file_mb`` overrides every format's default size limit.

    - ``max_file_mb``: bytes on disk (default per format, see ``DEFAULT_FILE_MB``).
    - ``max_unpacked_mb``: bytes a DOCX (a zip) may unpack to (zip bombs).
    - ``max_html_tags``: elements of an HTML page (each costs about 1 kB and 50 µs in the parser).
    - ``max_seconds_per_file``: time to read and chunk one file.
    - ``max_chunks_per_document``: chunks of one document (a 440 KB file of headings made 20,000).
    - ``max_chunk_chars``: characters of one chunk. The token limit alone does not bound them:
      the tokenizer reads a 300,000-character "word" as a single unknown token.
    """

    max_file_mb: float | None = None
    max_unpacked_mb: float = 500
    max_html_tags: int = 200_000
    max_seconds_per_file: float = 120
    max_chunks_per_document: int = 5_000
    max_chunk_chars: int = 3_000

    def __post_init__(self) -> None:
        for name in ("max_unpacked_mb", "max_html_tags", "max_seconds_per_file", "max_chunks_per_document"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.max_file_mb is not None and self.max_file_mb <= 0:
            raise ValueError(f"max_file_mb must be > 0, got {self.max_file_mb}")
        if self.max_chunk_chars < 100:
            raise ValueError(f"max_chunk_chars must be >= 100, got {self.max_chunk_chars}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: float | None) -> IngestLimits:
        """The defaults, changed by the ``RAG_MAX_*`` environment variables, then by ``overrides`` not None.

        Raises ``ValueError`` naming the variable when one is not a positive number.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for name, variable, kind in (
            ("max_file_mb", ENV_MAX_FILE_MB, float),
            ("max_seconds_per_file", ENV_MAX_SECONDS, float),
            ("max_chunks_per_document", ENV_MAX_CHUNKS, int),
            ("max_chunk_chars", ENV_MAX_CHUNK_CHARS, int),
            ("max_html_tags", ENV_MAX_HTML_TAGS, int),
        ):
            if environ.get(variable, "").strip():
                try:
                    values[name] = kind(environ[variable])
                except ValueError:
                    raise ValueError(f"{variable} must be a number, got {environ[variable]!r}") from None
        values.update({name: value for name, value in overrides.items() if value is not None})
        return replace(cls(), **values)

    def max_file_bytes(self, suffix: str) -> int:
        megabytes = self.max_file_mb if self.max_file_mb is not None else DEFAULT_FILE_MB.get(suffix.lower(), 20)
        return int(megabytes * 1_000_000)

    def check_size(self, path: Path, size: int) -> None:
        """Raise ``LimitExceeded`` when a file of ``size`` bytes is over its format's limit."""
        limit = self.max_file_bytes(path.suffix)
        if size > limit:
            raise LimitExceeded(
                f"too large: {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit for {path.suffix.lower()} files "
                f"(--max-file-mb or ${ENV_MAX_FILE_MB} raises it)"
            )


# ---- the time budget of the file being read --------------------------------------------------

_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("rag_ingest_deadline", default=None)
"""When the file being read on this thread must be done (``time.monotonic()``) and its budget in seconds, or None.

A context variable, not an argument, so that a loop deep inside a loader can check the budget
without every loader's signature carrying it; it is set only inside ``time_budget``."""


class TimeBudgetExceeded(LimitExceeded):
    """The file took longer than ``max_seconds_per_file`` to read and chunk."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Run the block with a budget of ``seconds``; past it, ``TimeBudgetExceeded`` is raised.

    On the main thread a timer signal interrupts any Python code (a loader's loop in pypdf or
    python-docx); on other threads (a server's upload handler) signals cannot be used, so the
    budget is enforced where our own loops call ``check_time_budget()``.

    >>> with time_budget(5):
    ...     check_time_budget()
    """
    token = _DEADLINE.set((time.monotonic() + seconds, seconds))
    use_signal = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    armed = [use_signal]

    def on_alarm(signum: int, frame: object) -> None:
        if armed[0]:
            raise TimeBudgetExceeded(_over_budget_message(seconds))

    previous = signal.signal(signal.SIGALRM, on_alarm) if use_signal else None
    try:
        if use_signal:
            # Then again every second: a library that swallows exceptions (pypdf's lenient parsing
            # catches many) would otherwise let the file run on unbounded.
            signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
        yield
    finally:
        armed[0] = False  # an alarm already on its way must not raise outside the block
        if use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        _DEADLINE.reset(token)


def check_time_budget() -> None:
    """Raise ``TimeBudgetExceeded`` when the current file's time budget is spent (cheap: call it in loops)."""
    budget = _DEADLINE.get()
    if budget is not None and time.monotonic() > budget[0]:
        raise TimeBudgetExceeded(_over_budget_message(budget[1]))


def _over_budget_message(seconds: float) -> str:
    return f"took longer than {seconds:g} s to read and chunk (--max-seconds-per-file or ${ENV_MAX_SECONDS} raises it)"
