"""HTML pages: the main content's text (navigation and chrome dropped), with a section for each heading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from index.limits import check_time_budget
from index.loaders.common import (
    HeadingPath,
    collapse_spaces,
    decode_text,
    file_document,
    file_metadata,
    normalise_text,
    page_title,
)
from index.types import Document, Section

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


def load_html(path: Path, raw: bytes, modified: float) -> list[Document]:
    from bs4 import BeautifulSoup
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(raw, is_html=True)
    markup, encoding = decode_text(path, raw, declared=declared)
    soup = BeautifulSoup(markup, "lxml")
    title = page_title(soup.title.get_text()) if soup.title else ""
    builder = _HtmlTextBuilder()
    builder.walk(_html_content_root(soup))
    builder.flush()
    text = builder.text()
    if not title:
        title = next((s.heading.split(" > ")[-1] for s in builder.sections), "")
    metadata = file_metadata(raw, modified, "html", encoding=encoding)
    return [file_document(path, title, text, metadata, sections=builder.sections)]


def _html_content_root(soup: Any) -> Any:
    """The element holding the page's content, with navigation chrome removed."""
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.select_one("div.body") or soup.body or soup
    for element in root.select(_DROPPED_HTML):
        element.decompose()
    for header in root.find_all("header"):
        # Page banners go, but an article's <header> often holds its <h1>: keep that one.
        if not header.find(list(_HEADING_TAGS)):
            header.decompose()
    return root


def _html_row_text(row: Any) -> str:
    """A table row as one line, cells joined by " | "."""
    cells = (collapse_spaces(cell.get_text(" ")) for cell in row.find_all(_CELL_TAGS))
    return " | ".join(cell for cell in cells if cell)


class _HtmlTextBuilder:
    """Collects block text from an HTML tree: paragraphs joined by a blank line, headings as
    Sections with their offsets."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self._blocks: list[str] = []
        self._length = 0
        self._inline: list[str | None] = []  # None marks a <br>
        self._headings = HeadingPath()

    def walk(self, node: Any) -> None:
        """Collect the text below ``node`` in document order.

        An explicit stack, not recursion: 10,000 nested ``<div>``s (or 50,000 unclosed ``<b>``s,
        which the parser nests) raised RecursionError and aborted the whole run.
        """
        from bs4 import NavigableString, Tag

        # Each frame is the iterator over one element's children; a None on the stack means
        # "a block element ends here" (flush its paragraph).
        stack: list[Iterator[Any] | None] = [iter(node.children)]
        while stack:
            frame = stack[-1]
            if frame is None:
                stack.pop()
                self.flush()
                continue
            child = next(frame, None)
            check_time_budget()
            if child is None:
                stack.pop()
            elif isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not a Comment, Doctype, CData...
                    self._inline.append(str(child))
            elif not isinstance(child, Tag):
                continue
            elif child.name in _HEADING_TAGS:
                self.flush()
                self.add_heading(_HEADING_TAGS[child.name], collapse_spaces(child.get_text()))
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
                stack.append(None)
                stack.append(iter(child.children))
            else:
                stack.append(iter(child.children))

    def flush(self) -> None:
        """End the current paragraph of inline text."""
        lines: list[str] = []
        current: list[str] = []
        for piece in self._inline + [None]:
            if piece is None:
                lines.append(collapse_spaces("".join(current)))
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
        heading = collapse_spaces(heading.replace(_PERMALINK, ""))
        start = self.add_block(heading)
        if start is not None:
            self.sections.append(Section(start=start, heading=self._headings.enter(level, heading)))

    def text(self) -> str:
        return "\n\n".join(self._blocks)
