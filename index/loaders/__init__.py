"""Turn files on disk (txt, md, html, pdf, docx, BEIR-style jsonl) into normalised Documents.

``discover_files`` finds what to load under a set of paths; ``load_file`` loads one file and
raises ``LoadError`` with a one-line reason a user can act on when the file cannot be loaded.

Example::

    files, skipped, errors = discover_files(["docs/"])
    for path in files:
        for document in load_file(path):
            print(document.title, len(document.text), [s.heading for s in document.sections])
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

from index.limits import ENV_MAX_HTML_TAGS, IngestLimits, LimitExceeded
from index.loaders.common import (
    SUPPORTED_SUFFIXES,
    LoadError,
    SkippedFile,
    file_id,
    normalise_text,
    os_reason,
    shown_path,
    source_exists,
)
from index.loaders.discovery import discover_files
from index.loaders.docx import load_docx
from index.loaders.html import load_html
from index.loaders.jsonl import load_jsonl
from index.loaders.markdown import load_markdown
from index.loaders.pdf import load_pdf
from index.loaders.text import load_text
from index.types import Document

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadError",
    "SkippedFile",
    "discover_files",
    "file_id",
    "load_file",
    "normalise_text",
    "shown_path",
    "source_exists",
]


def load_file(path: Path, limits: IngestLimits | None = None) -> list[Document]:
    """Load one file: one Document, or one per line for a BEIR-style ``.jsonl`` corpus.

    Raises ``LoadError`` when the file is missing, unreadable, empty, binary, corrupt, of an
    unsupported type or over a size limit of ``limits`` (default ``IngestLimits()``); its reason is
    meant for the user ("empty file (no text)").

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     note = Path(folder) / "note.md"
    ...     _ = note.write_text("# Setup\\n\\nRun it.\\n\\n## On Linux\\n\\nUse apt.\\n")
    ...     [document] = load_file(note)
    >>> document.title, [section.heading for section in document.sections]
    ('Setup', ['Setup', 'Setup > On Linux'])
    """
    path = Path(path)
    suffix = path.suffix.lower()
    loader = _LOADERS.get(suffix)
    if loader is None:
        reason = f"unsupported type {suffix}" if suffix else "unsupported type (no suffix)"
        raise LoadError(path, reason)
    limits = limits or IngestLimits()
    raw, modified = _read_bytes(path, limits)
    if not raw:
        raise LoadError(path, "empty file (no text)")
    try:
        _check_unpacked_size(suffix, raw, limits)
    except LimitExceeded as error:
        raise LoadError(path, str(error)) from None
    return loader(path, raw, modified)


def _check_unpacked_size(suffix: str, raw: bytes, limits: IngestLimits) -> None:
    """Refuse, before parsing, what would cost far more than its bytes: an HTML page of too many
    tags (the parser spends about 1 kB and 50 µs on each) or a DOCX that unpacks to too much."""
    if suffix in (".html", ".htm"):
        tags = raw.count(b"<") - raw.count(b"</")  # opening tags: each one makes an element
        if tags > limits.max_html_tags:
            raise LimitExceeded(
                f"too many HTML tags: {tags:,}, over the limit of {limits.max_html_tags:,} "
                f"(${ENV_MAX_HTML_TAGS} raises it)"
            )
    elif suffix == ".docx":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            return  # the DOCX loader reports a damaged file in its own words
        if unpacked > limits.max_unpacked_mb * 1_000_000:
            raise LimitExceeded(
                f"unpacks to {unpacked / 1e6:,.0f} MB, over the {limits.max_unpacked_mb:g} MB limit (a zip bomb?)"
            )


def _read_bytes(path: Path, limits: IngestLimits) -> tuple[bytes, float]:
    """The file's bytes and modification time, or a LoadError saying why they cannot be read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        reason = "broken symbolic link" if path.is_symlink() else "no such file or directory"
        raise LoadError(path, reason) from None
    except OSError as error:
        raise LoadError(path, f"cannot read file ({os_reason(error)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise LoadError(path, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or device could block forever or never end, so refuse before reading.
        raise LoadError(path, "not a regular file (pipe, socket or device)")
    try:
        limits.check_size(path, info.st_size)
    except LimitExceeded as error:
        raise LoadError(path, str(error)) from None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_file_bytes(path.suffix) + 1)  # a file growing while read stays bounded
        limits.check_size(path, len(raw))
        return raw, info.st_mtime
    except LimitExceeded as error:
        raise LoadError(path, str(error)) from None
    except OSError as error:
        raise LoadError(path, f"cannot read file ({os_reason(error)})") from None


_LOADERS: dict[str, Callable[[Path, bytes, float], list[Document]]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".jsonl": load_jsonl,
}
