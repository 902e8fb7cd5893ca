"""What every loader shares: the error a bad file raises, text decoding and normalising, metadata, titles."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.structure import Block, classify_blocks
from index.types import Document, Section

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"})

MIME_TYPES: dict[str, str] = {
    "text": "text/plain",
    "markdown": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "jsonl": "application/jsonl",
}

# A title longer than this is more likely the first sentence of the body.
MAX_TITLE_CHARS = 120
# Share of control characters above which decoded bytes are treated as binary, not text.
_MAX_CONTROL_CHAR_RATIO = 0.05
_BINARY_SNIFF_CHARS = 65_536


class LoadError(Exception):
    """A file that could not be loaded; ``str(err)`` is ``"{path}: {reason}"``, one line.

    >>> str(LoadError("notes.txt", "empty file (no text)"))
    'notes.txt: empty file (no text)'
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class SkippedFile:
    """A file ``discover_files`` passed over on purpose, e.g. ``reason="hidden file"``."""

    path: str
    reason: str


def os_reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()


def file_metadata(raw: bytes, modified: float, fmt: str, **extra: Any) -> dict[str, Any]:
    return {
        "mime_type": MIME_TYPES[fmt],
        "modified": modified,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "format": fmt,
        **extra,
    }


def file_document(
    path: Path,
    title: str,
    text: str,
    metadata: dict[str, Any],
    sections: list[Section] | None = None,
    page_starts: list[int] | None = None,
    hints: list[Block] | None = None,
) -> Document:
    """A loaded file as a Document whose blocks are classified (``hints``: blocks the loader knows)."""
    if not text.strip():
        raise LoadError(path, "empty file (no text)")
    absolute = path.resolve().as_posix()
    return Document(
        id=absolute,
        source=absolute,
        title=title or path.stem,
        text=text,
        metadata=metadata,
        page_starts=page_starts or [],
        sections=sections or [],
        blocks=classify_blocks(text, hints or []),
    )


def normalise_text(text: str) -> str:
    """Normalise extracted text: ``\\n`` line ends, no NUL bytes, no trailing spaces on a line,
    at most one blank line in a row, no blank lines at either end.

    >>> normalise_text("a  \\r\\n\\r\\n\\r\\n\\r\\nb\\x00\\n")
    'a\\n\\nb'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n")


def collapse_spaces(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),  # before UTF-16 LE: its BOM starts the same way
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(path: Path, raw: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    Order: a byte-order mark (UTF-8/16/32), UTF-8, the ``declared`` encoding (an HTML meta
    charset), cp1252 (the usual non-UTF-8 text in the wild), charset-normalizer's guess when it is
    installed, and latin-1 as the last resort. Raises ``LoadError("binary data, not text")`` for
    NUL bytes or a decoded text made mostly of control characters.
    cp1252 is tried before charset-normalizer because on short Western text it guesses
    exotic code pages (cp775, cp1250) and produces mojibake.
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding
            except UnicodeDecodeError:
                raise LoadError(path, "binary data, not text") from None
    if b"\x00" in raw:
        raise LoadError(path, "binary data, not text")
    for encoding in ("utf-8", declared, "cp1252"):
        text = _try_decode(raw, encoding)
        if text is not None:
            break
    else:
        text, encoding = _guess_encoding(raw)
    if _looks_binary(text):
        raise LoadError(path, "binary data, not text")
    return text, str(encoding)


def _try_decode(raw: bytes, encoding: str | None) -> str | None:
    if not encoding:
        return None
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _guess_encoding(raw: bytes) -> tuple[str, str]:
    try:
        import charset_normalizer
    except ImportError:
        return raw.decode("latin-1"), "latin-1"
    best = charset_normalizer.from_bytes(raw).best()
    if best is None:
        return raw.decode("latin-1"), "latin-1"
    return str(best), best.encoding


def _looks_binary(text: str) -> bool:
    sample = text[:_BINARY_SNIFF_CHARS]
    if not sample:
        return False
    controls = sum(1 for char in sample if char not in "\t\n\r\f\v" and unicodedata.category(char) == "Cc")
    return controls / len(sample) > _MAX_CONTROL_CHAR_RATIO


class HeadingPath:
    """Tracks the chain of open headings, e.g. level 1 "fs", level 3 "File paths"."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, heading: str) -> str:
        """Open a heading at ``level``; returns its path joined with " > "."""
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, heading))
        return " > ".join(title for _, title in self._open)


# Sphinx titles read "{page} \u2014 {project} documentation"; the page name is the title.
_SPHINX_TITLE_SUFFIX = re.compile(r"\s+\u2014\s+[^\u2014]*\bdocumentation$")


def page_title(title: str) -> str:
    """``title`` with spaces collapsed and a Sphinx "\u2014 Project documentation" suffix dropped.

    >>> page_title("8. Errors and Exceptions \u2014 Python 3.11.2 documentation")
    '8. Errors and Exceptions'
    """
    return _SPHINX_TITLE_SUFFIX.sub("", collapse_spaces(title))
