"""Plain text files: decoded, normalised, titled by a short first line."""

from __future__ import annotations

from pathlib import Path

from index.loaders.common import MAX_TITLE_CHARS, decode_text, file_document, file_metadata, normalise_text
from index.types import Document


def load_text(path: Path, raw: bytes, modified: float) -> list[Document]:
    text, encoding = decode_text(path, raw)
    text = normalise_text(text)
    metadata = file_metadata(raw, modified, "text", encoding=encoding)
    return [file_document(path, _plain_text_title(text), text, metadata)]


def _plain_text_title(text: str) -> str:
    """The first line when it is short and followed by a blank line, else "" (use the stem)."""
    first, _, rest = text.partition("\n")
    if rest.startswith("\n") and 0 < len(first.strip()) < MAX_TITLE_CHARS:
        return first.strip()
    return ""
