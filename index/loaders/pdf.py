"""PDF files: each page's text, with the page starts kept so a passage knows its page."""

from __future__ import annotations

import io
from pathlib import Path

from index.limits import LimitExceeded, check_time_budget
from index.loaders.common import MAX_TITLE_CHARS, LoadError, file_document, file_metadata, normalise_text, page_title
from index.types import Document


def load_pdf(path: Path, raw: bytes, modified: float) -> list[Document]:
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
    title = page_title(metadata_title) or first_page_line[:MAX_TITLE_CHARS]
    metadata = file_metadata(raw, modified, "pdf", page_count=len(pages))
    return [file_document(path, title, text, metadata, page_starts=page_starts)]


def _read_pdf(path: Path, raw: bytes) -> tuple[list[str], str]:
    """Each page's raw text and the metadata title, or a LoadError for a corrupt PDF."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(path, "PDF is encrypted (password required)")
        title = (reader.metadata.title if reader.metadata else None) or ""
        return [_page_text(page) for page in reader.pages], str(title)
    except (LoadError, LimitExceeded):
        raise
    except Exception as error:  # noqa: BLE001 - reported as a LoadError naming the file
        # pypdf raises many kinds of errors on damaged files (PdfReadError, ValueError,
        # KeyError, ...); all of them mean the same thing to the user.
        detail = str(error).strip() or type(error).__name__
        raise LoadError(path, f"corrupt or unreadable PDF ({detail[:100]})") from None


def _page_text(page: object) -> str:
    check_time_budget()
    return page.extract_text() or ""  # type: ignore[attr-defined]
