"""Example questions shown in an empty chat, fitted to the collection that is loaded.

A collection may carry its own list in ``examples.json`` (the demo index does); otherwise the
questions are made from section headings of a spread of its documents, so they are answerable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from index.store import IndexStore

EXAMPLES_FILE = "examples.json"
"""Optional file in an index folder: a JSON list of example questions."""

DEMO_EXAMPLES: tuple[str, ...] = (
    "How do I add a folder of files to the index?",
    "How are citations checked?",
    "What happens when the documents do not answer a question?",
    "Can it run without an internet connection?",
)
"""Questions about the user guide in ``docs/``, written into the demo index on first start; each was
checked to get a cited answer from the extractive backend (a new user's first click should work)."""

_SECTION_NUMBER = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[A-Z]\.|§)\s+")
_MAX_EXAMPLES = 4


def write_examples(index_dir: Path, questions: tuple[str, ...] | list[str]) -> None:
    """Store a collection's own example questions next to its index."""
    (Path(index_dir) / EXAMPLES_FILE).write_text(json.dumps(list(questions), indent=2) + "\n")


def example_questions(store: IndexStore, limit: int = _MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` questions for the collection in ``store``; [] for an empty collection."""
    listed = _listed_examples(store.index_dir)
    if listed:
        return listed[:limit]
    documents = store.documents()
    if not documents:
        return []
    # Spread the picks over the collection rather than taking the first folder's files.
    step = max(1, len(documents) // (limit * 2))
    questions: list[str] = []
    for info in documents[::step]:
        document = store.get_document(info.id)
        if document is None:
            continue
        question = _question_for(document.title, [s.heading for s in document.sections])
        if question and question not in questions:
            questions.append(question)
        if len(questions) == limit:
            break
    return questions


def _listed_examples(index_dir: Path) -> list[str]:
    path = Path(index_dir) / EXAMPLES_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # a broken examples file only costs the examples, never the page
    return [q.strip() for q in data if isinstance(q, str) and q.strip()] if isinstance(data, list) else []


def _question_for(title: str, headings: list[str]) -> str | None:
    """A question from a document's title and its first sub-section heading.

    >>> _question_for("8. Errors and Exceptions", ["8. Errors and Exceptions", "8. Errors and Exceptions > 8.3. Handling Exceptions"])
    'What does “Errors and Exceptions” say about handling Exceptions?'
    >>> _question_for("Release notes", [])
    'What is “Release notes” about?'
    """
    topic = _clean(title)
    for heading in headings:
        parts = [_clean(part) for part in heading.split(" > ")]
        section = parts[-1]
        if len(parts) >= 2 and 1 <= len(section.split()) <= 6:
            return f"What does “{topic or parts[0]}” say about {_lower_first(section)}?"
    if topic and len(topic) <= 80:
        return f"What is “{topic}” about?"
    return None


def _clean(text: str) -> str:
    return _SECTION_NUMBER.sub("", " ".join(text.split())).strip(" :¶#")


def _lower_first(text: str) -> str:
    # "Supported formats" -> "supported formats", but "URL objects" keeps its acronym.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
