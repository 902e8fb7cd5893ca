"""Composing extractive answers (issue 11): what a chosen sentence brings, markers from [1], two-part questions."""

from __future__ import annotations

from index.structure import classify_blocks
from index.types import Chunk
from rag.answering.compose import (
    complete_sentence,
    is_how_to,
    number_by_appearance,
    question_parts,
    without_repeated_units,
)
from rag.answering.sentences import split_sentences
from rag.types import Passage

TEXT = (
    "The most useful form is to give a default value. It creates a shorter call. For example:\n\n"
    "def ask(prompt, retries=4):\n    pass\n\n"
    "The defaults are evaluated in the defining scope, so that\n\ni = 5\nf()\n\nwill print 5."
)


def _passage(text: str = TEXT) -> Passage:
    code = [(text.index("def ask"), text.index("    pass") + 8), (text.index("i = 5"), text.index("f()") + 3)]
    from index.structure import Block

    blocks = classify_blocks(text, [Block(start, end, "code") for start, end in code])
    chunk = Chunk("c", "d", text, 0, len(text), blocks=tuple((b.start, b.end, b.kind) for b in blocks))
    return Passage(chunk, 1.0, 1, "hybrid", "d.html", "Guide")


def _sentence(passage: Passage, starting: str):
    return next(s for s in split_sentences(passage.text) if s.text.startswith(starting))


def test_a_how_to_answer_brings_the_example_and_the_sentences_leading_to_it() -> None:
    passage = _passage()
    unit = complete_sentence(passage, 0, _sentence(passage, "The most useful"), how_to=True)
    assert unit.block.startswith("def ask(prompt, retries=4):") and unit.block_kind == "code"
    assert unit.quote.text.endswith("For example:")
    assert unit.text(1).startswith("The most useful form") and "```\ndef ask(prompt, retries=4):" in unit.text(1)


def test_a_sentence_interrupted_by_code_is_shown_whole() -> None:
    passage = _passage()
    unit = complete_sentence(passage, 0, _sentence(passage, "The defaults"), how_to=False)
    assert unit.continuation == "will print 5." and "i = 5\nf()" in unit.block
    assert unit.text(1).endswith("will print 5. [1]")


def test_markers_are_numbered_by_first_appearance_and_passages_follow() -> None:
    passages = [_passage(), _passage(), _passage()]
    units = [complete_sentence(passages[2], 2, _sentence(passages[2], "The most"), False),
             complete_sentence(passages[0], 0, _sentence(passages[0], "It creates"), False)]
    markers, ordered = number_by_appearance(units, passages)
    assert markers == {2: 1, 0: 2, 1: 3} and ordered == [passages[2], passages[0], passages[1]]


def test_questions_are_split_in_two_only_when_they_ask_two_things() -> None:
    assert question_parts("Who confirmed the talks, and where did he say it?") == [
        "Who confirmed the talks", "where did he say it?"
    ]
    assert question_parts("What did Tom and Ann say?") == ["What did Tom and Ann say?"]
    assert is_how_to("How can I remove a listener?") and not is_how_to("Who removed it?")


# Written for these tests: a Markdown list whose items wrap, as in the Node.js reference.
STREAMS = (
    "There are three kinds of pipes here:\n\n"
    "* [`Reader`][]: pipes from which data can be read (for example,\n  [`open()`][]).\n"
    "* [`Writer`][]: pipes to which data can be written (for example,\n  [`create()`][]).\n"
    "* [`Both`][]: pipes that are both.\n\n"
    "* `listener` {Function} Common parameter of the\n  [`connect()`][] functions, a listener for the event.\n"
)


def _markdown_passage(text: str) -> Passage:
    blocks = classify_blocks(text)
    chunk = Chunk("c", "d", text, 0, len(text), blocks=tuple((b.start, b.end, b.kind) for b in blocks))
    return Passage(chunk, 1.0, 1, "hybrid", "d.md", "Pipes")


def test_a_sentence_introducing_a_list_brings_every_item_with_its_wrapped_lines() -> None:
    passage = _markdown_passage(STREAMS)
    unit = complete_sentence(passage, 0, _sentence(passage, "There are three"), how_to=False)
    assert unit.block_kind == "list"
    assert "[`open()`][])." in unit.block and "Writer" in unit.block and "pipes that are both." in unit.block


def test_the_wrapped_line_of_a_list_item_is_no_sentence_of_its_own() -> None:
    from rag.answering.extractive import quotable_sentences

    sentences = [span.clean for span, _ in quotable_sentences(_markdown_passage(STREAMS))]
    assert not any(s.startswith("[`connect()`][] functions") for s in sentences), sentences
    assert any(s.startswith("* `listener` {Function} Common parameter of the [`connect()`][] functions") for s in sentences)


def test_a_second_sentence_inside_the_first_ones_how_to_paragraph_is_not_shown_again() -> None:
    # "How do I listen for an event only once in Node.js?" showed the once() example twice: the first
    # sentence brought its whole paragraph and the example, then the paragraph's second sentence did too.
    passage = _passage()
    chosen = [_sentence(passage, "The most useful"), _sentence(passage, "It creates")]
    units = without_repeated_units([complete_sentence(passage, 0, span, how_to=True) for span in chosen])
    assert len(units) == 1 and units[0].quote.text.startswith("The most useful")
    assert units[0].quote.text.endswith("For example:") and units[0].block.startswith("def ask")
    # Two sentences that do not hold each other both stay.
    apart = [_sentence(passage, "The most useful"), _sentence(passage, "The defaults")]
    assert len(without_repeated_units([complete_sentence(passage, 0, s, how_to=False) for s in apart])) == 2
