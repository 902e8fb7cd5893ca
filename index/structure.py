"""The structure of a document's text: each block classified as prose, heading, list, code, table,
references (a source or link list such as "Sources" or "Related articles"), navigation or page furniture.

Loaders know some blocks for certain (an HTML ``<pre>``, a Markdown fence, a PDF line in a monospace
font) and pass them as *hints*; :func:`classify_blocks` classifies the rest of the text line by line from
its surface (length, capitals, code characters, bullets) and finds the reference and link lists that
follow a "Sources" or "Related articles" heading. The answerer quotes only prose and list blocks
(``QUOTABLE_KINDS``); the other blocks stay searchable.

>>> text = "Setup\\n\\nRun the installer first.\\n\\n>>> import spam\\n\\nSources\\nCNBC\\nThe Spam Times"
>>> [(text[b.start:b.end].split("\\n")[0], b.kind) for b in classify_blocks(text)]
[('Setup', 'heading'), ('Run the installer first.', 'prose'), ('>>> import spam', 'code'), ('Sources', 'heading'), ('CNBC', 'references'), ('The Spam Times', 'references')]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BLOCK_KINDS",
    "QUOTABLE_KINDS",
    "Block",
    "block_at",
    "blocks_in",
    "classify_blocks",
    "merge_blocks",
    "whole_lists",
]

BLOCK_KINDS = ("prose", "heading", "list", "code", "table", "references", "navigation", "furniture")
QUOTABLE_KINDS = frozenset({"prose", "list"})
"""Blocks whose sentences may be an answer."""


@dataclass(frozen=True)
class Block:
    """``text[start:end]`` is one block of kind ``kind`` (one of ``BLOCK_KINDS``); ``level`` for headings."""

    start: int
    end: int
    kind: str
    level: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise ValueError(f"block kind must be one of {', '.join(BLOCK_KINDS)}, got {self.kind!r}")


# Headings that open a list of sources or links: its items are searchable, never an answer.
_REFERENCE_HEADING = re.compile(
    r"(?:^|\W)(sources|references|related articles|related posts|related stories|see also|further reading"
    r"|bibliography|footnotes|external links|read more|more from)\s*:?\s*$",
    re.IGNORECASE,
)
# Short lines that are site chrome rather than content.
_NAVIGATION_LINE = re.compile(
    r"^(?:go|search|menu|home|next|previous|next topic|previous topic|this page|show source|report a bug"
    r"|table of contents|navigation|skip to (?:main )?content|share|subscribe|sign in|log in|\d+\s*min(?:ute)?s? read"
    r"|min read|back to top|don't fall behind|advertisement)\W*$",
    re.IGNORECASE,
)
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?$|^-\s*\d{1,4}\s*-$", re.IGNORECASE)
_LINK_DEFINITION = re.compile(r"^\[[^\]]+\]:\s*\S+$")  # a Markdown link reference definition
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•▪◦]\s+|\d{1,3}[.)]\s+|[a-z][.)]\s+(?=[A-Z]))")
_CODE_LINE = re.compile(
    r"^\s*(?:>>>|\.\.\.(?:\s|$)|\$ |#include|import |from \S+ import|def \w|class \w+[(:]|return\b|const |let |var "
    r"|function\b|await |try:|except\b|elif\b|else:|for \w+ in .*:$|while .*:$|if .*:$|print\(|[{}\]]\s*[;,)]?\s*$)"
    r"|[{;]\s*$|^\s*\w+(?:\.\w+)*\s*=\s*[\w'\"(\[{-]|=>|^\s*//"
)
_TERMINAL = re.compile(r"[.!?:;][\"'”’)\]]*$")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_FUNCTION_WORDS = frozenset(
    "a an the of to in on at by for with from as and or but if then than that which who is are was were be been "
    "has have had do does did can could will would should may might must it its this these those there their they "
    "he she his her we our you your not no into over under after before about between also only so such".split()
)


def classify_blocks(text: str, hints: Sequence[Block] = ()) -> list[Block]:
    """Blocks covering the non-blank lines of ``text``, in order.

    ``hints`` are blocks a loader knows (code, headings, tables, list items): they are kept as given;
    the lines between them are classified here, a run of prose lines becoming one block.
    """
    hints = sorted(hints, key=lambda b: b.start)
    blocks: list[Block] = []
    position = 0
    for hint in hints:
        if hint.start < position:
            continue  # overlapping hints: the first one wins
        blocks.extend(_classify_lines(text, position, hint.start))
        blocks.append(hint)
        position = hint.end
    blocks.extend(_classify_lines(text, position, len(text)))
    return _mark_reference_lists(text, _merge_prose(text, blocks))


def _classify_lines(text: str, start: int, end: int) -> list[Block]:
    blocks = []
    offset = start
    for line in text[start:end].split("\n"):
        line_start, line_end = offset, offset + len(line)
        offset = line_end + 1
        stripped = line.strip()
        if not stripped:
            continue
        lead = len(line) - len(line.lstrip())
        blocks.append(Block(line_start + lead, line_start + lead + len(stripped), line_kind(stripped)))
    return blocks


def line_kind(line: str) -> str:
    """The kind of one line of text seen on its own (prose, heading, list, code, table, navigation, furniture).

    >>> [line_kind(s) for s in ("4.8.1. Default Argument Values", ">>> f(2)", "- an item", "It is fast.", "3/17")]
    ['heading', 'code', 'list', 'prose', 'furniture']
    """
    if _PAGE_NUMBER.match(line):
        return "furniture"
    if _LINK_DEFINITION.match(line):
        return "references"
    if _NAVIGATION_LINE.match(line):
        return "navigation"
    if _CODE_LINE.search(line) and not _looks_like_sentence(line):
        return "code"
    if line.count(" | ") >= 2 or (line.startswith("|") and line.endswith("|")):
        return "table"
    if _LIST_ITEM.match(line):
        return "list"
    if _looks_like_heading(line):
        return "heading"
    return "prose"


def _looks_like_sentence(line: str) -> bool:
    words = _WORD.findall(line)
    function_words = sum(w.lower() in _FUNCTION_WORDS for w in words)
    return len(words) >= 6 and function_words / len(words) >= 0.2 and bool(_TERMINAL.search(line))


def _looks_like_heading(line: str) -> bool:
    """A short line without a sentence end whose words are mostly capitalised or numbered ("4.1. if Statements")."""
    if len(line) > 90 or _TERMINAL.search(line) or line.endswith(","):
        return False
    words = [w for w in _WORD.findall(line) if w.lower() not in _FUNCTION_WORDS]
    if re.match(r"^\d+(?:\.\d+)*\.?\s+\S", line):
        return True
    if not words:
        return False
    return len(words) <= 12 and sum(w[0].isupper() for w in words) / len(words) >= 0.6


def _merge_prose(text: str, blocks: list[Block]) -> list[Block]:
    """Consecutive lines of one kind (prose, code, references, table) with no blank line between are one block."""
    merged: list[Block] = []
    for block in blocks:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.kind == block.kind
            and block.kind in ("prose", "code", "references", "table")
            and "\n\n" not in text[previous.end : block.start]
        ):
            merged[-1] = Block(previous.start, block.end, block.kind, previous.level)
        else:
            merged.append(block)
    return merged


def _mark_reference_lists(text: str, blocks: list[Block]) -> list[Block]:
    """After a "Sources"/"Related articles" heading, blocks are references until a heading of the same or a
    higher level (known levels), or a heading followed by a long paragraph (plain text has no levels)."""
    marked: list[Block] = []
    inside: int | None = None  # the level of the open reference heading, 0 when unknown
    for index, block in enumerate(blocks):
        block_text = text[block.start : block.end]
        first_line = block_text.split("\n")[0]
        if block.kind in ("heading", "prose", "navigation") and _REFERENCE_HEADING.search(first_line) and len(first_line) < 60:
            inside = block.level
            marked.append(Block(block.start, block.end, "heading", block.level))
            continue
        if inside is not None and block.kind == "heading" and _ends_reference_list(text, blocks, index, inside):
            inside = None
        if inside is not None and block.kind not in ("furniture", "navigation"):
            block = Block(block.start, block.end, "references", block.level)
        marked.append(block)
    return marked


def _ends_reference_list(text: str, blocks: list[Block], index: int, level: int) -> bool:
    block = blocks[index]
    if level and block.level:
        return block.level <= level
    following = blocks[index + 1] if index + 1 < len(blocks) else None
    return following is not None and following.kind == "prose" and following.end - following.start >= 300


def merge_blocks(blocks: Sequence[Block]) -> list[Block]:
    """Sorted, without overlaps (the earlier block wins)."""
    result: list[Block] = []
    for block in sorted(blocks, key=lambda b: (b.start, -b.end)):
        if result and block.start < result[-1].end:
            continue
        result.append(block)
    return result


def blocks_in(blocks: Sequence[Block], start: int, end: int) -> tuple[tuple[int, int, str], ...]:
    """The blocks overlapping ``[start, end)``, clipped to it and made relative to ``start`` (what a chunk stores)."""
    return tuple(
        (max(b.start, start) - start, min(b.end, end) - start, b.kind) for b in blocks if b.end > start and b.start < end
    )


def block_at(blocks: Sequence[tuple[int, int, str]], offset: int) -> str | None:
    """The kind of the (relative) block holding ``offset``, or None when no block covers it."""
    for start, end, kind in blocks:
        if start <= offset < end:
            return kind
    return None


_CONTINUATION = re.compile(r"\n[ \t]+$")


def whole_lists(text: str, blocks: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``blocks`` (sorted, relative to ``text``) with each list made one block: its items on consecutive
    lines and the indented lines that continue an item.

    Lines are classified one by one, so a Markdown item wrapped over two lines ("* `connectListener`
    {Function} Common parameter of the" / "  [`net.createConnection()`][] functions, an ...") was a list
    line followed by a prose block that starts in the middle of a sentence, and a sentence ending in ":"
    brought only the first line of the list it introduces.

    >>> text = "Kinds:\\n\\n* one, a long item that\\n  goes on\\n* two\\n\\nAfter."
    >>> [(text[s:e], kind) for s, e, kind in whole_lists(text, [(0, 6, "prose"), (8, 31, "list"), (34, 41, "prose"),
    ...                                                          (42, 47, "list"), (49, 55, "prose")])]
    [('Kinds:', 'prose'), ('* one, a long item that\\n  goes on\\n* two', 'list'), ('After.', 'prose')]
    """
    merged: list[tuple[int, int, str]] = []
    for start, end, kind in blocks:
        if merged and merged[-1][2] == "list":
            gap = text[merged[-1][1] : start]
            item = kind == "list" and gap.strip(" \t") == "\n"
            continued = kind in ("prose", "code") and _CONTINUATION.fullmatch(gap) is not None
            if item or continued:
                merged[-1] = (merged[-1][0], end, "list")
                continue
        merged.append((start, end, kind))
    return merged
