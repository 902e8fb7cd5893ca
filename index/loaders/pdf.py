"""PDF files: each page's text without its running header and footer, headings found from the outline or
the font sizes, code lines from their monospace font, and the page starts kept so a passage knows its page.

Page furniture is what a printer adds to every page: a line repeated at the top or bottom of most pages
(Chromium prints the date, the time and the page title above, the file's URL and "3/17" below), a page
number, a print timestamp. Such lines are dropped from the text, so they are neither searched nor quoted.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.limits import LimitExceeded, check_time_budget
from index.loaders.common import (
    MAX_TITLE_CHARS,
    HeadingPath,
    LoadError,
    collapse_spaces,
    file_document,
    file_metadata,
    normalise_text,
    page_title,
)
from index.structure import Block, line_kind
from index.types import Document, Section

EDGE_LINES = 3
"""How many lines at the top and at the bottom of a page may be furniture."""
REPEATED_SHARE = 0.5
"""A line (digits aside) at the edge of at least this share of the pages is a running header or footer."""
HEADING_SIZE_RATIO = 1.15
"""A line whose font is this much larger than the body text's is a heading."""
_TIMESTAMP = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4},?\s+\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AP]M)?\b", re.IGNORECASE)
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$|^-\s*\d{1,4}\s*-$", re.IGNORECASE)
_URL_WITH_PAGE = re.compile(r"^(?:file|https?)\S*\s+\d{1,4}\s*/\s*\d{1,4}$", re.IGNORECASE)
_MONOSPACE = re.compile(r"mono|courier|consol|menlo|code", re.IGNORECASE)


@dataclass(frozen=True)
class _Line:
    """One extracted line with what its fonts say: the largest size on it and the share set in monospace."""

    text: str
    size: float = 0.0
    monospace: float = 0.0


def load_pdf(path: Path, raw: bytes, modified: float) -> list[Document]:
    pages, metadata_title, outline = _read_pdf(path, raw)
    pages = _without_furniture(pages)
    if not any(line.text.strip() for page in pages for line in page):
        raise LoadError(path, "PDF has no extractable text (scanned image?)")
    body_size = _body_size(pages)
    heading_levels = _heading_levels(pages, body_size)
    text, page_starts, hints, sections = "", [], [], []
    headings = HeadingPath()
    for page in pages:
        page_text = normalise_text("\n".join(line.text for line in page))
        if text and page_text:
            text += "\n\n"
        page_starts.append(len(text))
        offset = len(text)
        kept = {line.text.strip(): line for line in page}
        for line_text in page_text.split("\n"):
            stripped = line_text.strip()
            line = kept.get(stripped)
            if stripped and line is not None:
                start = offset + line_text.index(stripped)
                kind, level = _line_kind(line, body_size, heading_levels, outline)
                hints.append(Block(start, start + len(stripped), kind, level))
                if kind == "heading":
                    sections.append(Section(start, headings.enter(level, collapse_spaces(stripped))))
            offset += len(line_text) + 1
        text += page_text
    first_line = next((line.text.strip() for page in pages for line in page if line.text.strip()), "")
    title = page_title(metadata_title) or first_line[:MAX_TITLE_CHARS]
    metadata = file_metadata(raw, modified, "pdf", page_count=len(pages))
    return [file_document(path, title, text, metadata, sections=sections, page_starts=page_starts, hints=hints)]


def _line_kind(line: _Line, body_size: float, heading_levels: dict[float, int], outline: dict[str, int]) -> tuple[str, int]:
    """(kind, heading level) of a line: the outline and the fonts first, then the line's own surface."""
    text = collapse_spaces(line.text)
    if text in outline:
        return "heading", outline[text]
    if line.monospace >= 0.8:
        return "code", 0
    if line.size in heading_levels and len(text) <= MAX_TITLE_CHARS:
        return "heading", heading_levels[line.size]
    kind = line_kind(text)
    # A body-size line that looks like a heading is most often a wrapped line of a paragraph here.
    return ("prose" if kind in ("heading", "code") and body_size else kind), 0


def _read_pdf(path: Path, raw: bytes) -> tuple[list[list[_Line]], str, dict[str, int]]:
    """Each page's lines with their fonts, the metadata title and the outline (title -> depth), or a LoadError."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(path, "PDF is encrypted (password required)")
        title = (reader.metadata.title if reader.metadata else None) or ""
        pages = [_page_lines(page) for page in reader.pages]
        return pages, str(title), _outline_titles(reader)
    except (LoadError, LimitExceeded):
        raise
    except Exception as error:  # noqa: BLE001 - reported as a LoadError naming the file
        # pypdf raises many kinds of errors on damaged files (PdfReadError, ValueError,
        # KeyError, ...); all of them mean the same thing to the user.
        detail = str(error).strip() or type(error).__name__
        raise LoadError(path, f"corrupt or unreadable PDF ({detail[:100]})") from None


def _page_lines(page: Any) -> list[_Line]:
    """The page's text lines, each with the font size and monospace share of the pieces drawn on it."""
    fonts: dict[str, list[tuple[str, float, bool]]] = {}
    pieces: list[tuple[float, str, float, bool]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if not text.strip() or not tm or not cm:
            return
        name = str(font.get("/BaseFont", "")) if font else ""
        scale = abs(tm[3] * cm[3]) or 1.0
        pieces.append((round(tm[5] * cm[3] + cm[5], 0), text, round(size * scale, 1), bool(_MONOSPACE.search(name))))

    check_time_budget()
    text = page.extract_text(visitor_text=visit) or ""
    for y, piece, size, monospace in pieces:
        fonts.setdefault(str(y), []).append((piece, size, monospace))
    by_text = {}
    for drawn in fonts.values():
        key = re.sub(r"\s+", "", "".join(piece for piece, _, _ in drawn))
        characters = sum(len(piece.strip()) for piece, _, _ in drawn) or 1
        mono = sum(len(piece.strip()) for piece, _, is_mono in drawn if is_mono) / characters
        by_text[key] = (max(size for _, size, _ in drawn), mono)
    lines = []
    for line in text.split("\n"):
        size, mono = by_text.get(re.sub(r"\s+", "", line), (0.0, 0.0))
        lines.append(_Line(line, size, mono))
    return lines


def _outline_titles(reader: Any) -> dict[str, int]:
    """Outline (bookmark) titles with their depth, 1 for the top level; empty when the file has none."""
    titles: dict[str, int] = {}
    stack = [(item, 1) for item in reversed(reader.outline or [])]
    while stack:  # iterative: an outline can nest deeply
        item, depth = stack.pop()
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in reversed(item))
        elif getattr(item, "title", None):
            titles.setdefault(collapse_spaces(str(item.title)), min(depth, 6))
    return titles


def _edge_key(line: str) -> str:
    return re.sub(r"\d+", "#", collapse_spaces(line))


def _without_furniture(pages: list[list[_Line]]) -> list[list[_Line]]:
    """Pages without running headers and footers, page numbers and print timestamps at their edges."""
    edges = [
        [line for line in page if line.text.strip()][:EDGE_LINES] + [line for line in page if line.text.strip()][-EDGE_LINES:]
        for page in pages
    ]
    counts = Counter(key for edge in edges for key in {_edge_key(line.text) for line in edge})
    repeated = {key for key, count in counts.items() if count >= 2 and count >= REPEATED_SHARE * len(pages)}
    cleaned = []
    for page, edge in zip(pages, edges):
        edge_ids = {id(line) for line in edge}
        cleaned.append([line for line in page if not (id(line) in edge_ids and _is_furniture(line.text, repeated))])
    return cleaned


def _is_furniture(line: str, repeated: set[str]) -> bool:
    text = collapse_spaces(line)
    return bool(
        _edge_key(text) in repeated or _PAGE_NUMBER.match(text) or _URL_WITH_PAGE.match(text) or _TIMESTAMP.match(text)
    )


def _body_size(pages: list[list[_Line]]) -> float:
    """The font size of most of the text that is not code (0 when the file says nothing about its fonts)."""
    sizes: Counter[float] = Counter()
    for page in pages:
        for line in page:
            if line.size and line.monospace < 0.5:
                sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _heading_levels(pages: list[list[_Line]], body_size: float) -> dict[float, int]:
    """Font sizes larger than the body's, largest first, numbered as heading levels 1, 2, ..."""
    if not body_size:
        return {}
    sizes = {
        line.size
        for page in pages
        for line in page
        if line.size >= body_size * HEADING_SIZE_RATIO and line.monospace < 0.8 and line.text.strip()
    }
    return {size: level for level, size in enumerate(sorted(sizes, reverse=True)[:6], start=1)}
