"""Answers and conversations as Markdown, their citations resolved to quotes, sources and pages.

What the copy button under an answer copies, and what the Export button downloads: plain Markdown
that reads on its own in notes, an issue or an e-mail.

>>> from rag.types import Answer, Citation
>>> cited = Citation(1, "/d/kettle.txt", "c1", "/d/kettle.txt", "Kettle manual", 2, 0, 9, "It boils.")
>>> print(answer_markdown("When does it stop?", Answer("It stops when it boils. [1]", [cited]), ["/d"]))
### When does it stop?
<BLANKLINE>
It stops when it boils. [1]
<BLANKLINE>
Sources:
<BLANKLINE>
- [1] Kettle manual, d/kettle.txt, page 2
  > It boils.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rag.types import Answer, Citation
from ui.render import relative_source


def answer_markdown(
    question: str, answer: Answer | None, folders: Sequence[str] = (), error: str = ""
) -> str:
    """One exchange: the question as a heading, the answer with its ``[n]`` markers, then each source
    with the words it was cited for, quoted."""
    lines = [f"### {_one_line(question)}", ""]
    if answer is None:
        lines.append(f"_No answer: {error or 'the assistant gave none'}._")
        return "\n".join(lines)
    if answer.abstained:
        lines.append(f"_{answer.text.strip()}_")
        return "\n".join(lines)
    lines.append(answer.text.strip())
    flagged = [s for s in answer.unsupported_sentences if s.strip()]
    if flagged:
        lines += ["", "Not supported by the cited passages:", ""]
        lines += [f"- {_one_line(sentence)}" for sentence in flagged]
    sources = _sources(answer.citations, folders)
    if sources:
        lines += ["", "Sources:", "", *sources]
    return "\n".join(lines)


def _sources(citations: Sequence[Citation], folders: Sequence[str]) -> list[str]:
    """A list item per marker (source, page), then each quote cited with that marker."""
    by_marker: dict[int, list[Citation]] = {}
    for citation in citations:
        by_marker.setdefault(citation.marker, []).append(citation)
    lines: list[str] = []
    for marker in sorted(by_marker):
        first = by_marker[marker][0]
        where = [first.title or Path(first.source).name, relative_source(first.source, folders)]
        if first.page:
            where.append(f"page {first.page}")
        lines.append(f"- [{marker}] {', '.join(where)}")
        quotes = list(dict.fromkeys(c.quote.strip() for c in by_marker[marker] if c.quote.strip()))
        for quote in quotes:
            lines.append("  > " + "\n  > ".join(_one_line(part) for part in quote.splitlines() if part.strip()))
        if not all(c.supported for c in by_marker[marker]):
            lines.append("  (this passage does not support the sentence that cites it)")
    return lines


def conversation_markdown(
    title: str,
    exchanges: Sequence[tuple[str, Answer | None, str]],
    folders: Sequence[str] = (),
    collection: str = "",
    when: datetime | None = None,
) -> str:
    """A whole conversation: a title, where and when, then every ``(question, answer, error)`` exchange."""
    stamp = (when or datetime.now()).strftime("%Y-%m-%d %H:%M")
    where = f" from the collection “{collection}”" if collection else ""
    parts = [f"# {_one_line(title) or 'Conversation'}", "", f"_Answers{where}, exported {stamp} by rag-assistant._"]
    for question, answer, error in exchanges:
        parts += ["", answer_markdown(question, answer, folders, error)]
    return "\n".join(parts) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
