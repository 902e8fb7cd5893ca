"""Markdown files: the text as written, with a section for each ATX heading (fenced code is not a heading)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from index.loaders.common import HeadingPath, collapse_spaces, decode_text, file_document, file_metadata, normalise_text
from index.structure import Block
from index.types import Document, Section

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def load_markdown(path: Path, raw: bytes, modified: float) -> list[Document]:
    text, encoding = decode_text(path, raw)
    text = normalise_text(_outside_fences(text, lambda prose: _HTML_COMMENT.sub("", prose)))
    sections: list[Section] = []
    hints = _code_blocks(text)
    title = ""
    headings = HeadingPath()
    for start, level, heading in _markdown_headings(text):
        sections.append(Section(start=start, heading=headings.enter(level, heading)))
        line_end = text.find("\n", start)
        hints.append(Block(start, len(text) if line_end < 0 else line_end, "heading", level))
        if level == 1 and not title:
            title = heading
    metadata = file_metadata(raw, modified, "markdown", encoding=encoding)
    return [file_document(path, title, text, metadata, sections=sections, hints=hints)]


def _code_blocks(text: str) -> list[Block]:
    """Each fenced code block, fences included, as one code block."""
    blocks: list[Block] = []
    start = end = None
    for offset, line, in_code in _markdown_lines(text):
        if in_code:
            start = offset if start is None else start
            end = offset + len(line)
        elif start is not None:
            blocks.append(Block(start, end, "code"))
            start = None
    if start is not None:
        blocks.append(Block(start, end, "code"))
    return blocks


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
    return collapse_spaces(heading)
