"""Plain text files: decoded, normalised, titled by a short first line."""

from __future__ import annotations

from pathlib import Path

from index.loaders.common import MAX_TITLE_CHARS, decode_text, file_document, file_metadata, normalise_text
from index.types import Document, Section


def load_text(path: Path, raw: bytes, modified: float) -> list[Document]:
    text, encoding = decode_text(path, raw)
    text = normalise_text(text)
    metadata = file_metadata(raw, modified, "text", encoding=encoding)
    document = file_document(path, _plain_text_title(text), text, metadata)
    # Plain text has no markup for headings: the lines classified as headings (after the title) open sections.
    title_line_end = text.find("\n")
    document.sections = [
        Section(block.start, text[block.start : block.end].strip())
        for block in document.blocks
        if block.kind == "heading" and block.start > title_line_end >= 0
    ]
    return [document]


def _plain_text_title(text: str) -> str:
    """The first line when it is short and followed by a blank line, else "" (use the stem)."""
    first, _, rest = text.partition("\n")
    if rest.startswith("\n") and 0 < len(first.strip()) < MAX_TITLE_CHARS:
        return first.strip()
    return ""
