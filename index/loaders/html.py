"""HTML pages: the main content's text (navigation and chrome dropped), with a section for each heading."""

from __future__ import annotations

import re
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
from index.structure import Block
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
# The kind of the blocks inside an element (index.structure); other elements keep their parent's.
_CONTEXT_KINDS = {"li": "list", "dt": "list", "table": "table", "nav": "navigation"}
_PERMALINK = "\u00b6"


def load_html(path: Path, raw: bytes, modified: float) -> list[Document]:
    from bs4 import BeautifulSoup
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(raw, is_html=True)
    markup, encoding = decode_text(path, raw, declared=declared)
    soup = BeautifulSoup(markup, "lxml")
    title = page_title(soup.title.get_text()) if soup.title else ""
    builder = _HtmlTextBuilder()
    builder.walk(_html_content_root(soup, builder))
    builder.flush()
    text = builder.text()
    if not title:
        title = next((s.heading.split(" > ")[-1] for s in builder.sections), "")
    metadata = file_metadata(raw, modified, "html", encoding=encoding)
    return [file_document(path, title, text, metadata, sections=builder.sections, hints=builder.blocks)]


def _html_content_root(soup: Any, builder: _HtmlTextBuilder) -> Any:
    """The element holding the page's content, with navigation chrome removed.

    A page that marks its content (``<main>``, ``role="main"``, Sphinx's ``div.body``) is read from
    there. Any other page, once its chrome is removed, goes through trafilatura's main-content
    extraction (menus, sidebars, teasers, cookie banners dropped) when it is long and holds containers
    named like chrome (``_has_boilerplate``), falling back to ``<body>`` when it finds nothing. Its ``<pre>`` blocks are set aside first and put back by ``builder``: trafilatura
    writes them as quotes and loses their line breaks. Why not trafilatura for every page: on the
    Python tutorial's 17 Sphinx pages it dropped a whole section of errors.html (8.9, exception groups,
    2.9k characters) and turned inline code into blocks, while the marked content area loses nothing.
    """
    marked = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.select_one("div.body")
    root = marked or soup.body or soup
    for element in root.select(_DROPPED_HTML):
        element.decompose()
    for header in root.find_all("header"):
        # Page banners go, but an article's <header> often holds its <h1>: keep that one.
        if not header.find(list(_HEADING_TAGS)):
            header.decompose()
    if marked is not None:
        return root
    for number, pre in enumerate(root.find_all("pre")):
        placeholder = f"{_CODE_PLACEHOLDER}{number:06d}"
        builder.code_blocks[placeholder] = pre.get_text()
        replacement = soup.new_tag("p")
        replacement.string = placeholder
        pre.replace_with(replacement)
    worth_extracting = _has_boilerplate(root) and _depth_at_most(root, TRAFILATURA_MAX_DEPTH)
    content = _main_content(str(root)) if worth_extracting else None
    if content is None:
        return root
    # trafilatura keeps the page's title out of its text; the title heading opens the document here.
    title = root.find("h1")
    if title is not None and collapse_spaces(title.get_text()) not in collapse_spaces(content.get_text(" ")):
        content.insert(0, title)
    return content


TRAFILATURA_MAX_CHARS = 2_000_000
"""Larger pages are read from <body> as they are (main-content extraction would take long)."""
TRAFILATURA_MAX_DEPTH = 200
"""Deeper trees are read as they are: lxml, under trafilatura, stops at 255 levels and drops the rest."""
_CODE_PLACEHOLDER = "RAGCODEBLOCK"


_BOILERPLATE = re.compile(r"nav|menu|sidebar|footer|comment|share|social|related|cookie|banner|promo|subscribe|advert")
TRAFILATURA_MIN_CHARS = 2_000
"""A page with less text than this is read as it is: there is little chrome to remove, and trafilatura
merges the blocks of small pages ("one <div>two</div>" became "onetwo")."""


def _has_boilerplate(root: Any) -> bool:
    """Whether a page is long enough and holds containers named like site chrome (what trafilatura removes)."""
    if len(root.get_text()) < TRAFILATURA_MIN_CHARS:
        return False
    if root.find("aside") is not None:
        return True
    return any(
        _BOILERPLATE.search(" ".join(element.get("class", [])) + " " + str(element.get("id", "")))
        for element in root.find_all(["div", "section", "ul"], limit=5_000)
    )


def _depth_at_most(root: Any, limit: int) -> bool:
    """Whether no element lies more than ``limit`` levels below ``root`` (an explicit stack: trees can be deep)."""
    from bs4 import Tag

    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tag))
    return True


def _main_content(markup: str) -> Any:
    """trafilatura's main content of ``markup`` as a BeautifulSoup tree, or None when it finds none."""
    if not markup or len(markup) > TRAFILATURA_MAX_CHARS:
        return None
    try:
        import trafilatura
    except ImportError:  # an optional improvement: without it the page's <body> is read
        return None
    from bs4 import BeautifulSoup

    check_time_budget()
    try:
        extracted = trafilatura.extract(
            markup, output_format="html", include_formatting=True, include_tables=True, include_links=False,
            include_images=False, include_comments=False, favor_recall=True,
        )
    except (RecursionError, ValueError, TypeError):  # a hostile tree: read the page's own body instead
        return None
    check_time_budget()
    if not extracted:
        return None
    tree = BeautifulSoup(extracted, "lxml")
    return tree.body or tree


def _html_row_text(row: Any) -> str:
    """A table row as one line, cells joined by " | "."""
    cells = (collapse_spaces(cell.get_text(" ")) for cell in row.find_all(_CELL_TAGS))
    return " | ".join(cell for cell in cells if cell)


def _inline_pre(element: Any) -> bool:
    parent = element.parent
    return "\n" not in element.get_text() and parent is not None and parent.name in ("p", "li", "td", *_HEADING_TAGS)


class _HtmlTextBuilder:
    """Collects block text from an HTML tree: paragraphs joined by a blank line, headings as
    Sections with their offsets."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.blocks: list[Block] = []  # what the markup says each block is (hints for index.structure)
        self.code_blocks: dict[str, str] = {}  # placeholder -> the <pre> text it stands for
        self._context: list[str] = ["prose"]
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
                self._context.pop()
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
            elif child.name == "pre" and _inline_pre(child):
                stack.append(iter(child.children))  # trafilatura writes inline code as <pre> in a paragraph
            elif child.name == "pre":
                self.flush()
                self.add_block(child.get_text(), "code")
            elif child.name == "tr":
                self.flush()
                self.add_block(_html_row_text(child), "table")
            elif child.name == "br":
                self._inline.append(None)
            elif child.name in _BLOCK_TAGS:
                self.flush()
                self._context.append(_CONTEXT_KINDS.get(child.name, self._context[-1]))
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
        kind = self._context[-1]
        paragraph = "\n".join(lines)
        if paragraph.strip() in self.code_blocks:
            self.add_block(self.code_blocks[paragraph.strip()], "code")
        else:
            self.add_block(paragraph, kind if kind != "prose" else None)

    def add_block(self, block: str, kind: str | None = None, level: int = 0) -> int | None:
        """Append a paragraph (of ``kind`` when the markup says); returns where it starts, or None if empty."""
        block = normalise_text(block.replace(_PERMALINK, ""))
        if not block.strip():
            return None
        start = self._length + (2 if self._blocks else 0)
        self._blocks.append(block)
        self._length = start + len(block)
        if kind is not None:
            self.blocks.append(Block(start, self._length, kind, level))
        return start

    def add_heading(self, level: int, heading: str) -> None:
        heading = collapse_spaces(heading.replace(_PERMALINK, ""))
        start = self.add_block(heading, "heading", level)
        if start is not None:
            self.sections.append(Section(start=start, heading=self._headings.enter(level, heading)))

    def text(self) -> str:
        return "\n\n".join(self._blocks)
