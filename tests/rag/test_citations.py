"""Citations are verified, not trusted: bad markers go, unsupported sentences are flagged, quotes map to offsets."""

from __future__ import annotations

import pytest

from index.types import Chunk
from rag.answering.citations import check_support, is_abstention, verify_citations
from rag.answering.sentences import prose_score, split_sentences
from rag.types import Passage

DOCUMENT = (
    "Tea notes\n\n"
    "Green tea is made from leaves that are steamed soon after picking, which stops oxidation. "
    "Black tea leaves are rolled and left to oxidise fully before drying.\n\n"
    "Bicycle care\n\n"
    "A bicycle chain should be cleaned and oiled every few hundred kilometres."
)


def _passage(text: str, rank: int) -> Passage:
    start = DOCUMENT.index(text)
    chunk = Chunk(id=f"c{rank}", document_id="notes.md", text=text, start=start, end=start + len(text))
    return Passage(chunk=chunk, score=1.0 / rank, rank=rank, retriever="hybrid", source="/docs/notes.md", title="Notes")


@pytest.fixture
def passages() -> list[Passage]:
    tea = DOCUMENT[DOCUMENT.index("Green tea") : DOCUMENT.index("\n\nBicycle")]
    bikes = DOCUMENT[DOCUMENT.index("A bicycle") :]
    return [_passage(tea, 1), _passage(bikes, 2)]


def test_supported_citation_quotes_the_sentence_with_document_offsets(passages: list[Passage]) -> None:
    checked = verify_citations("Black tea is left to oxidise fully before it is dried [1].", passages)
    assert checked.unsupported_sentences == []
    [citation] = checked.citations
    assert citation.supported and citation.marker == 1
    assert citation.quote == "Black tea leaves are rolled and left to oxidise fully before drying."
    assert DOCUMENT[citation.start : citation.end] == citation.quote
    assert (citation.document_id, citation.chunk_id, citation.source) == ("notes.md", "c1", "/docs/notes.md")


def test_citation_of_the_wrong_passage_is_flagged(passages: list[Passage]) -> None:
    checked = verify_citations("Black tea is left to oxidise fully before it is dried [2].", passages)
    [citation] = checked.citations
    assert not citation.supported
    assert checked.unsupported_sentences == ["Black tea is left to oxidise fully before it is dried."]


def test_marker_pointing_nowhere_is_removed(passages: list[Passage]) -> None:
    checked = verify_citations("Green tea is steamed soon after picking [1][7]. Chains need oil [9].", passages)
    assert checked.text == "Green tea is steamed soon after picking [1]. Chains need oil."
    assert [c.marker for c in checked.citations] == [1]
    assert checked.unsupported_sentences == ["Chains need oil."]


def test_markers_after_the_full_stop_and_ranges_are_read(passages: list[Passage]) -> None:
    checked = verify_citations("A bicycle chain should be cleaned and oiled. [2] Tea is oxidised [1-2].", passages)
    assert [(c.marker, c.supported) for c in checked.citations] == [(2, True), (1, True), (2, False)]
    assert checked.unsupported_sentences == []


def test_paraphrase_is_supported_by_embedding_similarity(embedder, passages: list[Passage]) -> None:
    # Few words shared with the passage, same meaning: the cosine check carries it.
    sentence = "Steaming the freshly picked leaves halts oxidation in green tea."
    lexical_only = check_support(sentence, passages[0].text)
    with_embeddings = check_support(sentence, passages[0].text, embedder.embed)
    assert with_embeddings.cosine > lexical_only.cosine
    assert with_embeddings.supported
    assert not check_support(sentence, passages[1].text, embedder.embed).supported


def test_abstention_phrases_are_recognised() -> None:
    assert is_abstention("The documents don't answer this question.")
    assert is_abstention("This is not mentioned in the provided passages.")
    assert not is_abstention("Green tea is steamed [1].")


def test_sentences_keep_offsets_and_join_wrapped_pdf_lines() -> None:
    text = "Important warning: The default value is evaluated only once. This makes a difference when the default is a\nmutable object such as a list.\n\n4.8.2. Keyword Arguments"
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == [s.text for s in spans]
    assert spans[1].clean == "This makes a difference when the default is a mutable object such as a list."
    assert spans[2].text == "4.8.2. Keyword Arguments"


def test_a_sentence_wrapped_before_inline_code_stays_one_sentence() -> None:
    # Node's fs.md wraps a sentence before a line that opens with inline code; it was cut in two,
    # and the extractive answer quoted both halves as two sentences.
    text = (
        "Using `fs.exists()` to check for the existence of a file before calling\n"
        "`fs.open()`, `fs.readFile()`, or `fs.writeFile()` is not recommended. Doing so is a race."
    )
    assert [s.clean for s in split_sentences(text)] == [
        (
            "Using `fs.exists()` to check for the existence of a file before calling `fs.open()`, `fs.readFile()`, "
            "or `fs.writeFile()` is not recommended."
        ),
        "Doing so is a race.",
    ]


def test_a_chunk_that_starts_inside_a_code_block_still_joins_its_prose() -> None:
    # A chunk of Node's events.md begins mid-way through a fenced example: the closing fence was taken
    # for an opening one, so the prose after it was split line by line into half sentences.
    text = (
        "const myEmitter = new MyEmitter();\nmyEmitter.emit('event');\n```\n\n"
        "Using the `eventEmitter.once()` method, it is possible to register a listener\n"
        "that is called at most once for a particular event.\n\n```mjs\nimport { EventEmitter } from 'node:events';\n"
    )
    sentences = [s.clean for s in split_sentences(text)]
    assert (
        "Using the `eventEmitter.once()` method, it is possible to register a listener that is called at most "
        "once for a particular event." in sentences
    )
    assert "import { EventEmitter } from 'node:events';" in sentences


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    spans = split_sentences("The U.S. and China met, e.g. in Beijing. J. R. R. Tolkien wrote it. Done.")
    assert [s.text for s in spans] == [
        "The U.S. and China met, e.g. in Beijing.",
        "J. R. R. Tolkien wrote it.",
        "Done.",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "4.8.1. Default Argument Values",
        "Expert AI Implementation →Related Articles",
        "def ask_ok(prompt, retries=4, reminder='Please try again!'):",
        "const { signal } = controller;",
        "[`fs.open()`]: #fsopenpath-flags-mode-callback",
        "Sources",
        "2026-05-14",
        'if __name__ == "__main__":',
        "x = MyClass()",
    ],
)
def test_headings_links_and_code_score_low_as_prose(line: str) -> None:
    assert prose_score(line) < 0.35


@pytest.mark.parametrize(
    "sentence",
    [
        "The default value is evaluated only once.",
        "The `fs.readFile()` function buffers the entire file.",
        "Treasury Secretary Scott Bessent confirmed that the talks will begin next month.",
        # Names in prose: a called or dunder name, a Markdown link's brackets (they counted as code).
        (
            "When a class defines an __init__() method, class instantiation automatically invokes __init__() for "
            "the newly created class instance."
        ),
        "Creates a new TCP or [IPC][] server.",
    ],
)
def test_prose_scores_high(sentence: str) -> None:
    assert prose_score(sentence) >= 0.9
