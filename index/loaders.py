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

import hashlib
import io
import json
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.types import Document, Section

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"}
)

_MIME_TYPES: dict[str, str] = {
    "text": "text/plain",
    "markdown": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "jsonl": "application/jsonl",
}

# A title longer than this is more likely the first sentence of the body.
_MAX_TITLE_CHARS = 120
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


# --------------------------------------------------------------------------- discovery


def discover_files(
    paths: Iterable[str | Path],
) -> tuple[list[Path], list[SkippedFile], list[LoadError]]:
    """Find the loadable files under ``paths`` (files or folders, walked recursively).

    Returns ``(files, skipped, errors)``. Folders are walked in sorted order, so the result is
    deterministic; a file reached twice is listed once. Inside a folder, hidden entries (name
    starting with ".") and unsupported suffixes are skipped and reported; symbolic links to
    folders are not followed (they can loop). A file named explicitly is loaded even if hidden.
    A path that does not exist becomes a ``LoadError`` ("no such file or directory").

    >>> discover_files(["/no/such/place"])[2][0].reason
    'no such file or directory'
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    errors: list[LoadError] = []
    seen: set[Path] = set()
    for raw_path in paths:
        path = Path(raw_path)
        if not path.exists():
            reason = "broken symbolic link" if path.is_symlink() else "no such file or directory"
            errors.append(LoadError(path, reason))
            continue
        candidates = _walk(path, skipped, errors) if path.is_dir() else iter([path])
        for candidate in candidates:
            if not _is_supported(candidate, skipped):
                continue
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                files.append(candidate)
    return files, skipped, errors


def _walk(folder: Path, skipped: list[SkippedFile], errors: list[LoadError]) -> Iterator[Path]:
    """Yield the regular files below ``folder`` in sorted order, skipping hidden entries."""
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as error:
        errors.append(LoadError(folder, f"cannot read folder ({_os_reason(error)})"))
        return
    for entry in entries:
        is_dir = entry.is_dir()
        if entry.name.startswith("."):
            skipped.append(SkippedFile(str(entry), "hidden folder" if is_dir else "hidden file"))
        elif is_dir and entry.is_symlink():
            skipped.append(SkippedFile(str(entry), "symbolic link to a folder (not followed)"))
        elif is_dir:
            yield from _walk(entry, skipped, errors)
        elif entry.is_file():
            yield entry
        elif not entry.exists():
            errors.append(LoadError(entry, "broken symbolic link"))
        else:
            skipped.append(SkippedFile(str(entry), "not a regular file"))


def _is_supported(path: Path, skipped: list[SkippedFile]) -> bool:
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return True
    reason = f"unsupported type {suffix}" if suffix else "unsupported type (no suffix)"
    skipped.append(SkippedFile(str(path), reason))
    return False


# --------------------------------------------------------------------------- loading


def load_file(path: Path) -> list[Document]:
    """Load one file: one Document, or one per line for a BEIR-style ``.jsonl`` corpus.

    Raises ``LoadError`` when the file is missing, unreadable, empty, binary, corrupt or of an
    unsupported type; its reason is meant for the user ("empty file (no text)").

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
    raw, modified = _read_bytes(path)
    if not raw:
        raise LoadError(path, "empty file (no text)")
    return loader(path, raw, modified)


def _read_bytes(path: Path) -> tuple[bytes, float]:
    """The file's bytes and modification time, or a LoadError saying why they cannot be read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        reason = "broken symbolic link" if path.is_symlink() else "no such file or directory"
        raise LoadError(path, reason) from None
    except OSError as error:
        raise LoadError(path, f"cannot read file ({_os_reason(error)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise LoadError(path, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or device could block forever or never end, so refuse before reading.
        raise LoadError(path, "not a regular file (pipe, socket or device)")
    try:
        return path.read_bytes(), info.st_mtime
    except OSError as error:
        raise LoadError(path, f"cannot read file ({_os_reason(error)})") from None


def _os_reason(error: OSError) -> str:
    return (error.strerror or type(error).__name__).lower()


def _file_metadata(raw: bytes, modified: float, fmt: str, **extra: Any) -> dict[str, Any]:
    return {
        "mime_type": _MIME_TYPES[fmt],
        "modified": modified,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "format": fmt,
        **extra,
    }


def _file_document(
    path: Path,
    title: str,
    text: str,
    metadata: dict[str, Any],
    sections: list[Section] | None = None,
    page_starts: list[int] | None = None,
) -> Document:
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
    )


# --------------------------------------------------------------------------- text helpers


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


def _collapse_spaces(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),  # before UTF-16 LE: its BOM starts the same way
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _decode_text(path: Path, raw: bytes, declared: str | None = None) -> tuple[str, str]:
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
    controls = sum(
        1 for char in sample if char not in "\t\n\r\f\v" and unicodedata.category(char) == "Cc"
    )
    return controls / len(sample) > _MAX_CONTROL_CHAR_RATIO


class _HeadingPath:
    """Tracks the chain of open headings, e.g. level 1 "fs", level 3 "File paths"."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, heading: str) -> str:
        """Open a heading at ``level``; returns its path joined with " > "."""
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, heading))
        return " > ".join(title for _, title in self._open)


# --------------------------------------------------------------------------- plain text


def _load_text(path: Path, raw: bytes, modified: float) -> list[Document]:
    text, encoding = _decode_text(path, raw)
    text = normalise_text(text)
    metadata = _file_metadata(raw, modified, "text", encoding=encoding)
    return [_file_document(path, _plain_text_title(text), text, metadata)]


def _plain_text_title(text: str) -> str:
    """The first line when it is short and followed by a blank line, else "" (use the stem)."""
    first, _, rest = text.partition("\n")
    if rest.startswith("\n") and 0 < len(first.strip()) < _MAX_TITLE_CHARS:
        return first.strip()
    return ""


# --------------------------------------------------------------------------- Markdown

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _load_markdown(path: Path, raw: bytes, modified: float) -> list[Document]:
    text, encoding = _decode_text(path, raw)
    text = normalise_text(_outside_fences(text, lambda prose: _HTML_COMMENT.sub("", prose)))
    sections: list[Section] = []
    title = ""
    headings = _HeadingPath()
    for start, level, heading in _markdown_headings(text):
        sections.append(Section(start=start, heading=headings.enter(level, heading)))
        if level == 1 and not title:
            title = heading
    metadata = _file_metadata(raw, modified, "markdown", encoding=encoding)
    return [_file_document(path, title, text, metadata, sections=sections)]


def _markdown_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(offset, line, in_code)`` for each line; fence lines count as code."""
    offset = 0
    fence = ""
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence:
            closes = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
            yield offset, line, True
            if closes and not line.strip().lstrip(fence[0]):
                fence = ""
        elif match:
            fence = match.group(1)
            yield offset, line, True
        else:
            yield offset, line, False
        offset += len(line) + 1


def _outside_fences(text: str, change: Callable[[str], str]) -> str:
    """Apply ``change`` to each run of prose lines, leaving fenced code blocks as they are."""
    pieces: list[str] = []
    prose: list[str] = []
    for _, line, in_code in _markdown_lines(text):
        if in_code:
            if prose:
                pieces.append(change("\n".join(prose)))
                prose = []
            pieces.append(line)
        else:
            prose.append(line)
    if prose:
        pieces.append(change("\n".join(prose)))
    return "\n".join(pieces)


def _markdown_headings(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(line offset, level, clean heading)`` for each ATX heading outside code fences."""
    for offset, line, in_code in _markdown_lines(text):
        match = None if in_code else _ATX_HEADING.match(line)
        if match:
            heading = _clean_markdown_inline(re.sub(r"(?:^|[ \t]+)#+$", "", match.group(2) or ""))
            if heading:
                yield offset, len(match.group(1)), heading


def _clean_markdown_inline(heading: str) -> str:
    """Drop inline markup from a heading: links, images, code spans, bold, escapes."""
    heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    heading = heading.replace("`", "").replace("**", "")
    heading = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", heading)
    return _collapse_spaces(heading)


# --------------------------------------------------------------------------- HTML

_DROPPED_HTML = (
    "script, style, noscript, template, nav, footer, [role=navigation], "
    "div.related, div.sphinxsidebar, div.footer, a.headerlink"
)
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_BLOCK_TAGS = frozenset(
    "address article aside blockquote caption dd details dialog div dl dt fieldset figcaption "
    "figure form hr li main ol p section summary table tbody thead tfoot ul".split()
)
_CELL_TAGS = ["td", "th"]
_PERMALINK = "\u00b6"
# Sphinx titles read "{page} \u2014 {project} documentation"; the page name is the title.
_SPHINX_TITLE_SUFFIX = re.compile(r"\s+\u2014\s+[^\u2014]*\bdocumentation$")


def _page_title(title: str) -> str:
    """``title`` with spaces collapsed and a Sphinx "\u2014 Project documentation" suffix dropped.

    >>> _page_title("8. Errors and Exceptions \u2014 Python 3.11.2 documentation")
    '8. Errors and Exceptions'
    """
    return _SPHINX_TITLE_SUFFIX.sub("", _collapse_spaces(title))


def _load_html(path: Path, raw: bytes, modified: float) -> list[Document]:
    from bs4 import BeautifulSoup
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(raw, is_html=True)
    markup, encoding = _decode_text(path, raw, declared=declared)
    soup = BeautifulSoup(markup, "lxml")
    title = _page_title(soup.title.get_text()) if soup.title else ""
    builder = _HtmlTextBuilder()
    builder.walk(_html_content_root(soup))
    builder.flush()
    text = builder.text()
    if not title:
        title = next((s.heading.split(" > ")[-1] for s in builder.sections), "")
    metadata = _file_metadata(raw, modified, "html", encoding=encoding)
    return [_file_document(path, title, text, metadata, sections=builder.sections)]


def _html_content_root(soup: Any) -> Any:
    """The element holding the page's content, with navigation chrome removed."""
    root = (
        soup.find("main")
        or soup.find(attrs={"role": "main"})
        or soup.select_one("div.body")
        or soup.body
        or soup
    )
    for element in root.select(_DROPPED_HTML):
        element.decompose()
    for header in root.find_all("header"):
        # Page banners go, but an article's <header> often holds its <h1>: keep that one.
        if not header.find(list(_HEADING_TAGS)):
            header.decompose()
    return root


def _html_row_text(row: Any) -> str:
    """A table row as one line, cells joined by " | "."""
    cells = (_collapse_spaces(cell.get_text(" ")) for cell in row.find_all(_CELL_TAGS))
    return " | ".join(cell for cell in cells if cell)


class _HtmlTextBuilder:
    """Collects block text from an HTML tree: paragraphs joined by a blank line, headings as
    Sections with their offsets."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._blocks: list[str] = []
        self._length = 0
        self._inline: list[str | None] = []  # None marks a <br>
        self._headings = _HeadingPath()

    def walk(self, node: Any) -> None:
        from bs4 import NavigableString, Tag

        for child in node.children:
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a Comment, Doctype, CData...
                    self._inline.append(str(child))
            elif not isinstance(child, Tag):
                continue
            elif child.name in _HEADING_TAGS:
                self.flush()
                self.add_heading(_HEADING_TAGS[child.name], _collapse_spaces(child.get_text()))
            elif child.name == "pre":
                self.flush()
                self.add_block(child.get_text())
            elif child.name == "tr":
                self.flush()
                self.add_block(_html_row_text(child))
            elif child.name == "br":
                self._inline.append(None)
            elif child.name in _BLOCK_TAGS:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)

    def flush(self) -> None:
        """End the current paragraph of inline text."""
        lines: list[str] = []
        current: list[str] = []
        for piece in self._inline + [None]:
            if piece is None:
                lines.append(_collapse_spaces("".join(current)))
                current = []
            else:
                current.append(piece)
        self._inline = []
        self.add_block("\n".join(lines))

    def add_block(self, block: str) -> int | None:
        """Append a paragraph; returns where it starts in the text, or None if it was empty."""
        block = normalise_text(block.replace(_PERMALINK, ""))
        if not block.strip():
            return None
        start = self._length + (2 if self._blocks else 0)
        self._blocks.append(block)
        self._length = start + len(block)
        return start

    def add_heading(self, level: int, heading: str) -> None:
        heading = _collapse_spaces(heading.replace(_PERMALINK, ""))
        start = self.add_block(heading)
        if start is not None:
            self.sections.append(Section(start=start, heading=self._headings.enter(level, heading)))

    def text(self) -> str:
        return "\n\n".join(self._blocks)


# --------------------------------------------------------------------------- PDF


def _load_pdf(path: Path, raw: bytes, modified: float) -> list[Document]:
    page_texts, metadata_title = _read_pdf(path, raw)
    pages = [normalise_text(page) for page in page_texts]
    if not any(page.strip() for page in pages):
        raise LoadError(path, "PDF has no extractable text (scanned image?)")
    page_starts: list[int] = []
    text = ""
    for page in pages:
        if text and page:
            text += "\n\n"
        page_starts.append(len(text))
        text += page
    first_page_line = next((line.strip() for line in pages[0].split("\n") if line.strip()), "")
    title = _page_title(metadata_title) or first_page_line[:_MAX_TITLE_CHARS]
    metadata = _file_metadata(raw, modified, "pdf", page_count=len(pages))
    return [_file_document(path, title, text, metadata, page_starts=page_starts)]


def _read_pdf(path: Path, raw: bytes) -> tuple[list[str], str]:
    """Each page's raw text and the metadata title, or a LoadError for a corrupt PDF."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(path, "PDF is encrypted (password required)")
        title = (reader.metadata.title if reader.metadata else None) or ""
        return [page.extract_text() or "" for page in reader.pages], str(title)
    except LoadError:
        raise
    except Exception as error:  # noqa: BLE001 - reported as a LoadError naming the file
        # pypdf raises many kinds of errors on damaged files (PdfReadError, ValueError,
        # KeyError, ...); all of them mean the same thing to the user.
        detail = str(error).strip() or type(error).__name__
        raise LoadError(path, f"corrupt or unreadable PDF ({detail[:100]})") from None


# --------------------------------------------------------------------------- DOCX

_DOCX_HEADING_STYLE = re.compile(r"^Heading (\d)$")


def _load_docx(path: Path, raw: bytes, modified: float) -> list[Document]:
    document = _read_docx(path, raw)
    blocks: list[str] = []
    sections: list[Section] = []
    headings = _HeadingPath()
    length = 0
    first_heading = ""
    for block, level in _docx_blocks(document):
        block = normalise_text(block)
        if not block.strip():
            continue
        start = length + (2 if blocks else 0)
        blocks.append(block)
        length = start + len(block)
        if level:
            heading = _collapse_spaces(block)
            sections.append(Section(start=start, heading=headings.enter(level, heading)))
            first_heading = first_heading or heading
    title = _collapse_spaces(document.core_properties.title or "") or first_heading
    metadata = _file_metadata(raw, modified, "docx")
    return [_file_document(path, title, "\n\n".join(blocks), metadata, sections=sections)]


def _read_docx(path: Path, raw: bytes) -> Any:
    import docx

    try:
        return docx.Document(io.BytesIO(raw))
    except Exception as error:  # noqa: BLE001 - reported as a LoadError naming the file
        # A damaged DOCX surfaces as a zip, XML or package error depending on where it broke.
        detail = str(error).strip() or type(error).__name__
        raise LoadError(path, f"corrupt or unreadable DOCX ({detail[:100]})") from None


def _docx_blocks(document: Any) -> Iterator[tuple[str, int]]:
    """Yield ``(text, heading level or 0)`` for each paragraph and table, in document order.
    A paragraph in the "Title" style counts as a level-1 heading."""
    from docx.table import Table

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield _docx_table_text(item), 0
            continue
        style = item.style.name if item.style is not None else ""
        match = _DOCX_HEADING_STYLE.match(style)
        yield item.text, int(match.group(1)) if match else (1 if style == "Title" else 0)


def _docx_table_text(table: Any) -> str:
    """One line a row, cells joined by " | "; merged cells (repeated by python-docx) once."""
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = _collapse_spaces(cell.text)
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# --------------------------------------------------------------------------- JSONL (BEIR)

_JSONL_FIELDS = frozenset({"_id", "id", "title", "text"})


def _load_jsonl(path: Path, raw: bytes, modified: float) -> list[Document]:
    """One Document per line of a BEIR corpus: {"_id" or "id", "title", "text", ...}.
    Any bad line fails the whole file, naming the line."""
    source = path.resolve().as_posix()
    documents: list[Document] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not line.strip():
            continue
        record = _jsonl_record(path, number, line)
        document = _jsonl_document(path, source, number, record, modified)
        if document.id in first_line_of:
            first = first_line_of[document.id]
            reason = f"line {number}: duplicate id {document.id!r} (first on line {first})"
            raise LoadError(path, reason)
        first_line_of[document.id] = number
        documents.append(document)
    if not documents:
        raise LoadError(path, "empty file (no text)")
    return documents


def _jsonl_document(
    path: Path, source: str, number: int, record: dict[str, Any], modified: float
) -> Document:
    doc_id, title, body = _jsonl_fields(path, number, record)
    extra = {key: value for key, value in record.items() if key not in _JSONL_FIELDS}
    metadata = {
        "mime_type": _MIME_TYPES["jsonl"],
        "modified": modified,
        "sha256": hashlib.sha256(f"{title}\n{body}".encode()).hexdigest(),
        "format": "jsonl",
        "line": number,
        **({"fields": extra} if extra else {}),
    }
    # Title words matter for retrieval, so they lead the text.
    text = normalise_text(f"{title}\n\n{body}" if title.strip() else body)
    return Document(
        id=doc_id, source=source, title=title.strip() or doc_id, text=text, metadata=metadata
    )


def _jsonl_record(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise LoadError(path, f"line {number}: not valid UTF-8") from None
    except json.JSONDecodeError:
        raise LoadError(path, f"line {number}: not valid JSON") from None
    if not isinstance(record, dict):
        raise LoadError(path, f"line {number}: not a JSON object")
    return record


def _jsonl_fields(path: Path, number: int, record: dict[str, Any]) -> tuple[str, str, str]:
    """``(id, title, text)`` of one record, checked."""
    doc_id = record.get("_id", record.get("id"))
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or str(doc_id) == "":
        raise LoadError(path, f'line {number}: no "_id" or "id"')
    title = record.get("title") or ""
    body = record.get("text")
    if not isinstance(body, str):
        raise LoadError(path, f'line {number}: no "text" string')
    if not isinstance(title, str):
        raise LoadError(path, f'line {number}: "title" is not a string')
    if not (title.strip() or body.strip()):
        raise LoadError(path, f"line {number}: empty text")
    return str(doc_id), title, body


_LOADERS: dict[str, Callable[[Path, bytes, float], list[Document]]] = {
    ".txt": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".jsonl": _load_jsonl,
}
