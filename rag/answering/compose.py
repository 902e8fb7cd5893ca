"""Compose an extractive answer from chosen sentences: whole sentences, what they introduce, markers from [1].

A chosen sentence is completed from its passage's blocks (:mod:`index.structure`):

- a sentence ending in ":" brings the code block, list or table it introduces;
- a sentence the code interrupts ("The default values are evaluated ..., so that" code "will print 5.")
  is shown with the code and the words that finish it, never cut;
- for a how-to question ("How do I ...?"), the example that follows the sentence in its paragraph comes
  with it (and the sentences that lead to it, at most ``HOW_TO_LEAD_SENTENCES``).

Markers are numbered in order of first appearance: the first cited passage is [1].
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from index.structure import whole_lists
from rag.answering.sentences import Span, split_sentences
from rag.types import Passage

__all__ = ["AnswerUnit", "complete_sentence", "is_how_to", "number_by_appearance", "question_parts", "without_repeated_units"]

HOW_TO_LEAD_SENTENCES = 2
"""How many sentences may stand between a how-to answer's sentence and its example."""
MAX_CODE_LINES = 30
"""An example longer than this is cut (with a note): an answer shows how, the passage holds the rest."""
_HOW_TO = re.compile(
    r"^\s*(?:and\s+)?(?:how\s+(?:do|can|could|should|would|to|does)\b|what(?:'s| is) the (?:way|syntax)\b"
    r"|(?:show|give) me an example\b|example of\b)",
    re.IGNORECASE,
)
# ", and which network ...": a second question joined to the first.
_SECOND_QUESTION = re.compile(r",?\s+and\s+(?=(?:what|which|who|whom|whose|when|where|why|how)\b)", re.IGNORECASE)
_FINISHED = re.compile(r"[.!?][\"'”’)\]]*$")


@dataclass(frozen=True)
class AnswerUnit:
    """One cited piece of an answer: the quoted prose (offsets in its passage), then what it brings."""

    passage_index: int
    quote: Span
    block: str = ""
    block_kind: str = ""
    continuation: str = ""

    def text(self, marker: int) -> str:
        """The unit as answer text with its ``[marker]``; a code block is fenced (Markdown)."""
        prose = self.quote.clean
        if not self.block:
            return f"{prose} [{marker}]"
        shown = _fenced(self.block) if self.block_kind == "code" else self.block.strip()
        if self.continuation:
            return f"{prose}\n\n{shown}\n\n{self.continuation} [{marker}]"
        return f"{prose} [{marker}]\n\n{shown}"


def is_how_to(question: str) -> bool:
    """Whether a question asks how to do something (its answer should show the example).

    >>> is_how_to("How do I define a function?"), is_how_to("When is the default evaluated?")
    (True, False)
    """
    return bool(_HOW_TO.match(question))


def question_parts(question: str) -> list[str]:
    """A question that asks two things, cut in two; otherwise the question alone.

    >>> question_parts("Who confirmed the talks, and which network did he speak to?")
    ['Who confirmed the talks', 'which network did he speak to?']
    """
    parts = [part.strip() for part in _SECOND_QUESTION.split(question, maxsplit=1)]
    return parts if len(parts) == 2 and all(len(part.split()) >= 3 for part in parts) else [question]


def complete_sentence(passage: Passage, index: int, span: Span, how_to: bool) -> AnswerUnit:
    """``span`` (a sentence of ``passage``) with what it introduces or needs to be whole (see the module)."""
    blocks = whole_lists(passage.text, sorted(passage.chunk.blocks))
    text = passage.text
    holder = next((i for i, (start, end, _) in enumerate(blocks) if start <= span.start < end), None)
    if holder is None or holder + 1 >= len(blocks):
        return AnswerUnit(index, span)
    _, holder_end, _ = blocks[holder]
    after = text[span.end : holder_end].strip()
    next_start, next_end, next_kind = blocks[holder + 1]
    sentence = span.text.rstrip()
    if not after and sentence.endswith(":") and next_kind in ("code", "list", "table"):
        return AnswerUnit(index, span, _limited(text[next_start:next_end]), next_kind)
    if not after and not _FINISHED.search(sentence) and next_kind == "code":
        continuation = _continuation(text, blocks, holder + 2)
        return AnswerUnit(index, span, _limited(text[next_start:next_end]), "code", continuation)
    if how_to and next_kind == "code" and len(split_sentences(after)) <= HOW_TO_LEAD_SENTENCES:
        lead = Span(text[span.start : holder_end].rstrip(), span.start, span.start + len(text[span.start : holder_end].rstrip()))
        return AnswerUnit(index, lead, _limited(text[next_start:next_end]), "code")
    return AnswerUnit(index, span)


def without_repeated_units(units: Sequence[AnswerUnit]) -> list[AnswerUnit]:
    """``units`` less any whose quote another unit's quote already holds.

    A how-to answer's first sentence brings the rest of its paragraph with the example; when the
    second chosen sentence is in that paragraph it would be shown again, example and all ("How do I
    listen for an event only once?" printed the ``once()`` example twice). Compared as shown text, so
    a sentence found again in another chunk of the same section counts too.
    """
    kept: list[AnswerUnit] = []
    for unit in units:
        shown = unit.quote.clean
        if any(shown in other.quote.clean for other in kept):
            continue
        kept = [other for other in kept if other.quote.clean not in shown]
        kept.append(unit)
    return kept


def _continuation(text: str, blocks: Sequence[tuple[int, int, str]], position: int) -> str:
    """The words after a code block that finish the sentence it interrupted (they start in lower case)."""
    if position >= len(blocks) or blocks[position][2] != "prose":
        return ""
    start, end, _ = blocks[position]
    sentences = split_sentences(text[start:end])
    if not sentences or not sentences[0].text[:1].islower():
        return ""
    return sentences[0].clean


def _limited(block: str) -> str:
    lines = block.strip("\n").split("\n")
    if len(lines) <= MAX_CODE_LINES:
        return "\n".join(lines)
    fence = lines[0] if lines[0].lstrip().startswith("```") else ""
    kept = lines[:MAX_CODE_LINES] + ["…"] + (["```"] if fence else [])
    return "\n".join(kept)


def _fenced(code: str) -> str:
    """Code as a Markdown fenced block (a block that already has its fences is kept as written)."""
    code = code.strip("\n")
    if code.lstrip().startswith(("```", "~~~")):
        return code
    return f"```\n{code}\n```"


def number_by_appearance(units: Sequence[AnswerUnit], passages: Sequence[Passage]) -> tuple[dict[int, int], list[Passage]]:
    """Markers numbered in order of first appearance, and the passages reordered to match (``[n]`` is
    ``passages[n - 1]``): the cited passages first, in that order, then the others by rank."""
    order = list(dict.fromkeys(unit.passage_index for unit in units))
    order += [index for index in range(len(passages)) if index not in order]
    return {index: number for number, index in enumerate(order, start=1)}, [passages[i] for i in order]
