"""HTML for the chat page: answers with clickable ``[n]`` markers, and the sources panel.

Everything that comes from a document, a question or a model goes through ``html.escape``: a
document holding ``<script>`` or ``<img onerror=...>`` is shown as text, never as markup. The
answer HTML is emitted as one HTML block without blank lines, so the chatbot's Markdown renderer
leaves it alone and Markdown in a document (``![x](http://...)``) cannot load anything either.

A marker links to ``#cite-<answer id>-<n>``; the page's click handler (``ui/js.py``) turns that
into a request for the sources panel, so no script is ever part of a rendered answer.

>>> from rag.types import Answer
>>> "&lt;script&gt;" in answer_html(Answer(text="<script>alert(1)</script>"), "a1")
True
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.types import Answer, Citation, Passage

_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# How much text either side of a highlight a collapsed source card shows.
_EXCERPT_CONTEXT_CHARS = 220
_QUESTION_PREVIEW_CHARS = 80
_SEPARATOR = '<span class="sep">·</span>'

DocumentText = Callable[[str], str | None]
"""Looks up a document's full text by id (used when a cited chunk is not among the passages)."""


def escape(text: str) -> str:
    """Text as HTML text: markup characters escaped, line breaks kept as ``<br>`` (runs of blank lines as one).

    >>> escape('<img src=x onerror="alert(1)">\\n\\n\\nnext')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;<br><br>next'
    """
    return html.escape(_BLANK_LINES.sub("\n\n", text), quote=True).replace("\n", "<br>")


def cite_href(answer_id: str, marker: int) -> str:
    """The link target of marker ``marker`` of answer ``answer_id`` (read back by ``ui/js.py``)."""
    return f"#cite-{answer_id}-{marker}"


def answer_tools_html(answer_id: str, markdown: str) -> str:
    """The copy button under an answer, with the Markdown it copies (``ui.export``) hidden beside it.

    The Markdown travels inside the message as escaped text whose line breaks are ``&#10;``, so the
    message stays one HTML block for the chatbot's renderer, and the copy needs no request: the
    click handler in ``ui/js.py`` copies the hidden element's text.

    >>> answer_tools_html("a1", "# T\\n\\n<b>x</b>")
    '<div class="answer-tools"><a class="copy-answer" href="#copy-a1" title="Copy the answer and its sources as Markdown">Copy</a><div class="answer-export"># T&#10;&#10;&lt;b&gt;x&lt;/b&gt;</div></div>'
    """
    text = html.escape(markdown, quote=True).replace("\n", "&#10;")
    return (
        '<div class="answer-tools">'
        f'<a class="copy-answer" href="#copy-{answer_id}" title="Copy the answer and its sources as Markdown">Copy</a>'
        f'<div class="answer-export">{text}</div></div>'
    )


# --------------------------------------------------------------------------- chat messages


def question_html(question: str) -> str:
    """A user's question as a chat message."""
    return f'<div class="question">{escape(question)}</div>'


def streaming_html(text: str) -> str:
    """An answer still being written: plain text, markers shown but not yet verified."""
    body = _MARKERS.sub(lambda m: f'<span class="marker pending">{m.group(0)}</span>', html.escape(text))
    return f'<div class="answer streaming">{body.replace(chr(10), "<br>")}<span class="cursor"></span></div>'


def thinking_html() -> str:
    """What the assistant's message shows before the first word arrives."""
    return '<div class="answer streaming"><span class="thinking">Searching the documents…</span></div>'


def error_html(message: str, badge: str = "Could not answer") -> str:
    """An answer that could not be produced (empty collection, backend down, stopped): said plainly."""
    return f'<div class="answer failed"><div class="badge">{escape(badge)}</div><p>{escape(message)}</p></div>'


def answer_html(answer: Answer, answer_id: str) -> str:
    """A finished answer: linked markers, unsupported sentences flagged, sources listed under it."""
    if answer.abstained:
        return _abstention_html(answer)
    valid = {citation.marker for citation in answer.citations}
    body = _body_html(answer.text, answer.unsupported_sentences, valid, answer_id)
    parts = [f'<div class="answer">{body}']
    missing = [s for s in answer.unsupported_sentences if s.strip() and s not in answer.text]
    if missing:
        # Sentences the checker flagged but we cannot locate in the text are still shown as flagged.
        items = "".join(f"<li>{escape(s)}</li>" for s in missing)
        parts.append(f'<div class="unsupported-list">Not supported by the cited passages:<ul>{items}</ul></div>')
    parts.append(_source_chips(answer.citations, answer_id))
    parts.append("</div>")
    return "".join(parts)


def _abstention_html(answer: Answer) -> str:
    return (
        f'<div class="answer abstained"><div class="badge">Not in the documents</div><p>{escape(answer.text)}</p></div>'
    )


_FENCED_CODE = re.compile(r"^(`{3,}|~{3,})[^\n`]*\n(.*?)\n?^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def _body_html(text: str, unsupported: Iterable[str], valid: set[int], answer_id: str) -> str:
    """The answer text: fenced code blocks (a how-to answer's example) as ``<pre><code>``, the rest split
    into supported and unsupported runs with markers turned into links.

    >>> _body_html("Use it: [1]\\n\\n```py\\nx = 1 < 2\\n```", [], {1}, "a")
    'Use it: <a class="cite" href="#cite-a-1" title="Show source 1">[1]</a><pre class="code"><code>x = 1 &lt; 2</code></pre>'
    """
    pieces = []
    position = 0
    for match in _FENCED_CODE.finditer(text):
        pieces.append(_prose_html(text[position : match.start()].rstrip("\n"), unsupported, valid, answer_id))
        pieces.append(f'<pre class="code"><code>{html.escape(match.group(2))}</code></pre>')
        position = match.end()
    pieces.append(_prose_html(text[position:].lstrip("\n"), unsupported, valid, answer_id))
    return "".join(pieces)


def _prose_html(text: str, unsupported: Iterable[str], valid: set[int], answer_id: str) -> str:
    """Answer text without code blocks: supported and unsupported runs, markers turned into links."""
    pieces = []
    for segment, flagged in _split_flagged(text, unsupported):
        rendered = _linked_markers(segment, valid, answer_id)
        if flagged:
            rendered = (
                '<span class="unsupported" title="The cited passage does not support this sentence">'
                f'{rendered}<span class="unsupported-tag">unsupported</span></span>'
            )
        pieces.append(rendered)
    return "".join(pieces).replace("\n", "<br>")


def _split_flagged(text: str, sentences: Iterable[str]) -> list[tuple[str, bool]]:
    """``text`` cut into (segment, is_unsupported) runs, in order."""
    ranges = sorted(
        (start, start + len(sentence))
        for sentence in {s for s in sentences if s.strip()}
        if (start := text.find(sentence)) >= 0
    )
    segments: list[tuple[str, bool]] = []
    position = 0
    for start, end in ranges:
        if start < position:  # overlapping flags: the earlier one already covers this text
            continue
        if start > position:
            segments.append((text[position:start], False))
        segments.append((text[start:end], True))
        position = end
    if position < len(text):
        segments.append((text[position:], False))
    return segments


def _linked_markers(text: str, valid: set[int], answer_id: str) -> str:
    """Escape ``text`` and make each verified ``[n]`` (or ``[n, m]``) a link to its source."""
    out = []
    position = 0
    for match in _MARKERS.finditer(text):
        out.append(_inline_code(html.escape(text[position : match.start()])))
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        out.append("".join(_marker_link(n, answer_id) if n in valid else f"[{n}]" for n in numbers))
        position = match.end()
    out.append(_inline_code(html.escape(text[position:])))
    return "".join(out)


def _inline_code(escaped: str) -> str:
    """Backtick-quoted code in already escaped text as ``<code>``: answers quote API docs, where backticks are noise.

    >>> _inline_code("use `fs.readFile()` here")
    'use <code>fs.readFile()</code> here'
    """
    return _INLINE_CODE.sub(r"<code>\1</code>", escaped)


def _marker_link(marker: int, answer_id: str) -> str:
    return f'<a class="cite" href="{cite_href(answer_id, marker)}" title="Show source {marker}">[{marker}]</a>'


def _source_chips(citations: list[Citation], answer_id: str) -> str:
    chips = []
    for citation in first_per_marker(citations):
        classes = "source-chip" if citation.supported else "source-chip weak"
        label = escape(_short_title(citation.title or Path(citation.source).name))
        page = f", p.&nbsp;{citation.page}" if citation.page else ""
        chips.append(
            f'<a class="{classes}" href="{cite_href(answer_id, citation.marker)}">'
            f'<span class="chip-marker">{citation.marker}</span>{label}{page}</a>'
        )
    if not chips:
        return ""
    return f'<div class="sources-row"><span class="sources-label">Sources</span>{"".join(chips)}</div>'


def first_per_marker(citations: Iterable[Citation]) -> list[Citation]:
    """One citation per marker, in marker order (several sentences may cite the same passage)."""
    seen: dict[int, Citation] = {}
    for citation in citations:
        seen.setdefault(citation.marker, citation)
    return [seen[marker] for marker in sorted(seen)]


def _short_title(title: str, limit: int = 48) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- sources panel


@dataclass(frozen=True)
class _Excerpt:
    """A piece of document text and the spans in it to highlight (offsets relative to ``text``)."""

    text: str
    marks: list[tuple[int, int]]
    clipped_start: bool = False
    clipped_end: bool = False


def empty_sources_html(message: str = "Ask a question: the passages an answer cites appear here.") -> str:
    """The sources panel before anything was asked."""
    return f'<div class="sources-panel empty"><p>{escape(message)}</p></div>'


def sources_html(
    answer: Answer,
    answer_id: str,
    question: str = "",
    selected: int | None = None,
    document_text: DocumentText | None = None,
    folders: Sequence[str] = (),
) -> str:
    """The sources panel for one answer: a card per cited passage, ``selected`` expanded.

    The selected card shows its whole passage with the cited words in ``<mark>``; the others
    show the highlighted words with a little context. Retrieved passages nobody cited follow in
    a collapsed list, which is what an abstention shows ("these were the closest").
    """
    heading = _panel_heading(question)
    citations = first_per_marker(answer.citations)
    if selected is None and citations:
        selected = citations[0].marker
    cards = [
        _source_card(citation, answer, answer_id, citation.marker == selected, document_text, folders)
        for citation in citations
    ]
    if not cards:
        note = "No passage answered this question." if answer.abstained else "This answer cites no passage."
        cards.append(f'<p class="muted">{note}</p>')
    cited_chunks = {c.chunk_id for c in answer.citations}
    uncited = [p for p in answer.passages if p.chunk_id not in cited_chunks]
    others = _other_passages(uncited, answer.abstained, folders)
    return f'<div class="sources-panel">{heading}{"".join(cards)}{others}</div>'


def _panel_heading(question: str) -> str:
    preview = question if len(question) <= _QUESTION_PREVIEW_CHARS else question[:_QUESTION_PREVIEW_CHARS] + "…"
    asked = f'<div class="panel-question">{escape(preview)}</div>' if preview else ""
    return f'<div class="panel-heading"><span class="panel-title">Sources</span>{asked}</div>'


def _source_card(
    citation: Citation,
    answer: Answer,
    answer_id: str,
    selected: bool,
    document_text: DocumentText | None,
    folders: Sequence[str] = (),
) -> str:
    spans = [(c.start, c.end) for c in answer.citations if c.marker == citation.marker]
    excerpt = _excerpt_for(citation, spans, answer.passages, document_text, full=selected)
    classes = "source-card selected" if selected else "source-card"
    flag = (
        ""
        if all(c.supported for c in answer.citations if c.marker == citation.marker)
        else '<div class="card-flag">This passage does not support the sentence that cites it.</div>'
    )
    return (
        f'<article class="{classes}" data-marker="{citation.marker}">'
        f'<header><a class="card-marker" href="{cite_href(answer_id, citation.marker)}">{citation.marker}</a>'
        f'<span class="card-title">{escape(citation.title or Path(citation.source).name)}</span></header>'
        f"{_meta_line(citation.source, citation.page, _heading_of(citation, answer.passages), folders)}"
        f'<blockquote class="passage">{_excerpt_html(excerpt)}</blockquote>{flag}</article>'
    )


def _meta_line(source: str, page: int | None, heading: str, folders: Sequence[str] = ()) -> str:
    parts = [f'<span class="path" title="{html.escape(source)}">{escape(relative_source(source, folders))}</span>']
    if page:
        parts.append(f"<span>page {page}</span>")
    if heading:
        parts.append(f'<span class="section">{escape(heading)}</span>')
    return f'<div class="card-meta">{_SEPARATOR.join(parts)}</div>'


def display_path(source: str) -> str:
    """A source path as a person reads it: the home folder shown as ``~``.

    >>> display_path(str(Path.home() / "notes" / "a.md"))
    '~/notes/a.md'
    """
    home = str(Path.home())
    if home not in ("", "/") and (source == home or source.startswith(home + "/")):
        return "~" + source[len(home) :]
    return source


def relative_source(source: str, folders: Sequence[str] = ()) -> str:
    """A source path shown from the folder it was added from (that folder's name first), when known.

    >>> relative_source("/home/ada/notes/garden/tomatoes.md", ["/home/ada/notes", "/home/ada/notes/garden"])
    'garden/tomatoes.md'
    >>> relative_source("/srv/other/a.md", ["/home/ada/notes"])
    '/srv/other/a.md'
    """
    path = Path(source)
    containing = [Path(folder) for folder in folders if path.is_relative_to(folder) and path != Path(folder)]
    if not containing:
        return display_path(source)
    folder = max(containing, key=lambda candidate: len(candidate.parts))
    return (Path(folder.name) / path.relative_to(folder)).as_posix()


def _heading_of(citation: Citation, passages: list[Passage]) -> str:
    passage = _passage_for(citation, passages)
    return passage.chunk.heading if passage else ""


def _passage_for(citation: Citation, passages: list[Passage]) -> Passage | None:
    return next((p for p in passages if p.chunk_id == citation.chunk_id), None)


def _excerpt_for(
    citation: Citation,
    spans: list[tuple[int, int]],
    passages: list[Passage],
    document_text: DocumentText | None,
    full: bool,
) -> _Excerpt:
    """The text to show for a citation, with its spans made relative to that text."""
    passage = _passage_for(citation, passages)
    if passage is not None:
        base_text, base_start = passage.text, passage.chunk.start
    else:
        # The cited chunk is not among the passages (should not happen): fall back to the document.
        text = document_text(citation.document_id) if document_text else None
        if text is None:
            return _Excerpt(citation.quote, [(0, len(citation.quote))])
        base_text, base_start = text, 0
        full = False
    marks = _merge([(max(0, s - base_start), min(len(base_text), e - base_start)) for s, e in spans])
    marks = [(s, e) for s, e in marks if e > s]
    if not marks and citation.quote and (found := base_text.find(citation.quote)) >= 0:
        marks = [(found, found + len(citation.quote))]
    if full or not marks:
        return _trimmed(_Excerpt(base_text, marks))
    return _trimmed(_window(base_text, marks))


def _trimmed(excerpt: _Excerpt) -> _Excerpt:
    """Drop the white space a chunk starts or ends with (PDF pages leave blank lines), keeping marks aligned."""
    lead = len(excerpt.text) - len(excerpt.text.lstrip())
    text = excerpt.text.strip()
    marks = [(max(0, s - lead), min(len(text), e - lead)) for s, e in excerpt.marks]
    return _Excerpt(text, [(s, e) for s, e in marks if e > s], excerpt.clipped_start, excerpt.clipped_end)


def _window(text: str, marks: list[tuple[int, int]]) -> _Excerpt:
    start = max(0, marks[0][0] - _EXCERPT_CONTEXT_CHARS)
    end = min(len(text), marks[-1][1] + _EXCERPT_CONTEXT_CHARS)
    # Cut at word boundaries so the excerpt does not start or end mid-word.
    if start > 0:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < marks[0][0] else start
    if end < len(text):
        space = text.rfind(" ", marks[-1][1], end)
        end = space if space > 0 else end
    shifted = [(s - start, e - start) for s, e in marks]
    return _Excerpt(text[start:end], shifted, clipped_start=start > 0, clipped_end=end < len(text))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _excerpt_html(excerpt: _Excerpt) -> str:
    out = ["… " if excerpt.clipped_start else ""]
    position = 0
    for start, end in excerpt.marks:
        out.append(escape(excerpt.text[position:start]))
        out.append(f"<mark>{escape(excerpt.text[start:end])}</mark>")
        position = end
    out.append(escape(excerpt.text[position:]))
    out.append(" …" if excerpt.clipped_end else "")
    return "".join(out)


def _other_passages(passages: list[Passage], open_by_default: bool, folders: Sequence[str] = ()) -> str:
    if not passages:
        return ""
    label = "Closest passages" if open_by_default else f"{len(passages)} more retrieved, not cited"
    items = "".join(
        f'<li><div class="other-title">{escape(p.title or Path(p.source).name)}'
        f'<span class="score">{p.score:.2f}</span></div>'
        f"{_meta_line(p.source, p.page, p.chunk.heading, folders)}"
        f'<div class="other-text">{escape(_clip(p.text, 320))}</div></li>'
        for p in passages
    )
    opened = " open" if open_by_default else ""
    return f'<details class="other-passages"{opened}><summary>{label}</summary><ol>{items}</ol></details>'


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
