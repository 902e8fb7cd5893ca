"""BEIR-style .jsonl corpora: one Document per line, keeping the corpus's own ids."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from index.limits import check_time_budget
from index.loaders.common import MIME_TYPES, LoadError, file_id, normalise_text, without_surrogates
from index.types import Document

_JSONL_FIELDS = frozenset({"_id", "id", "title", "text"})


def load_jsonl(path: Path, raw: bytes, modified: float) -> list[Document]:
    """One Document per line of a BEIR corpus: {"_id" or "id", "title", "text", ...}.
    Any bad line fails the whole file, naming the line."""
    source = file_id(path)
    documents: list[Document] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(raw.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        if not line.strip():
            continue
        check_time_budget()
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


def _jsonl_document(path: Path, source: str, number: int, record: dict[str, Any], modified: float) -> Document:
    doc_id, title, body = _jsonl_fields(path, number, record)
    extra = {key: value for key, value in record.items() if key not in _JSONL_FIELDS}
    metadata = {
        "mime_type": MIME_TYPES["jsonl"],
        "modified": modified,
        "sha256": hashlib.sha256(f"{title}\n{body}".encode()).hexdigest(),
        "format": "jsonl",
        "line": number,
        **({"fields": extra} if extra else {}),
    }
    # Title words matter for retrieval, so they lead the text.
    text = normalise_text(f"{title}\n\n{body}" if title.strip() else body)
    return Document(id=doc_id, source=source, title=title.strip() or doc_id, text=text, metadata=metadata)


def _jsonl_record(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line.decode("utf-8"), parse_int=_parse_int)
    except UnicodeDecodeError:
        raise LoadError(path, f"line {number}: not valid UTF-8") from None
    except json.JSONDecodeError:
        raise LoadError(path, f"line {number}: not valid JSON") from None
    except RecursionError:
        # The decoder recurses once per nested bracket; 100,000 of them exhausted the stack.
        raise LoadError(path, f"line {number}: JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise LoadError(path, f"line {number}: not a JSON object")
    return record


def _parse_int(digits: str) -> int | str:
    """A JSON integer as ``int``, or kept as its digits when too long to be a count: Python refuses to
    convert more than 4,300 digits (a 5,000-digit ``_id`` raised ValueError), and an id stays a string anyway."""
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else digits


_MAX_INT_DIGITS = 100


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
    return without_surrogates(str(doc_id)), without_surrogates(title), without_surrogates(body)
