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
# Share of ASCII below which text that is not UTF-8 is taken for binary data.
_MIN_ASCII_SHARE_OF_LEGACY_TEXT = 0.7
_SURROGATES = re.compile("[\ud800-\udfff]")
_WORD = re.compile(r"[^\W\d_]{2}")


class LoadError(Exception):
    """A file that could not be loaded; ``str(err)`` is ``"{path}: {reason}"``, one line.

    >>> str(LoadError("notes.txt", "empty file (no text)"))
    'notes.txt: empty file (no text)'
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = shown_path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class SkippedFile:
    """A file ``discover_files`` passed over on purpose, e.g. ``reason="hidden file"``."""

    path: str
    reason: str


def shown_path(path: str | Path) -> str:
    """``path`` as text that can be printed, stored and sent as JSON: the bytes of a file name that
    is not valid UTF-8 (which Python keeps as lone surrogates) are written as ``\\xNN``.

    >>> shown_path(Path(b"/tmp/caf\\xe9.txt".decode("utf-8", "surrogateescape")))
    '/tmp/caf\\\\xe9.txt'
    """
    text = str(path)
    if not _SURROGATES.search(text):
        return text
    if _only_escapes(text):
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return without_surrogates(text)


def file_id(path: Path) -> str:
    """The document id (and source) of a file: its absolute path, resolved, as :func:`shown_path` writes it."""
    return shown_path(path.resolve().as_posix())


def source_exists(source: str) -> bool:
    """Whether the file a document's ``source`` names is still there (also when :func:`shown_path`
    had to escape its name)."""
    if Path(source).exists():
        return True
    unescaped = re.sub(r"\\x([0-9a-f]{2})", lambda match: chr(0xDC00 + int(match.group(1), 16)), source)
    return unescaped != source and Path(unescaped).exists()


def without_surrogates(text: str) -> str:
    """``text`` with lone surrogates (from a JSON ``"\\ud800"`` escape or a bad file name) replaced by U+FFFD:
    they cannot be encoded as UTF-8, so SQLite and hashing would fail on them."""
    return _SURROGATES.sub("\ufffd", text) if _SURROGATES.search(text) else text


def _only_escapes(text: str) -> bool:
    """True when every surrogate in ``text`` is one of the ``surrogateescape`` bytes (U+DC80..U+DCFF)."""
    return all("\udc80" <= char <= "\udcff" for char in _SURROGATES.findall(text))


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
    absolute = file_id(path)
    return Document(
        id=absolute,
        source=absolute,
        title=title or shown_path(path.stem),
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
    text = without_surrogates(text).replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
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
    if _looks_binary(text) or (encoding not in ("utf-8", declared) and _mostly_not_ascii(text)):
        raise LoadError(path, "binary data, not text")
    if text.strip() and not _WORD.search(text):
        raise LoadError(path, "no text (not one word of two letters)")
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


def _mostly_not_ascii(text: str) -> bool:
    """True for bytes that only a legacy code page could decode and that are mostly not ASCII:
    random bytes read as cp1252 (17 files of 1 to 7 random bytes were indexed as text). Real
    Windows-1252 or Latin-1 text is mostly ASCII with a few accented letters."""
    sample = text[:_BINARY_SNIFF_CHARS]
    ascii_text = sum(1 for char in sample if " " <= char <= "~" or char in "\t\n\r")
    return ascii_text < _MIN_ASCII_SHARE_OF_LEGACY_TEXT * len(sample)


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
