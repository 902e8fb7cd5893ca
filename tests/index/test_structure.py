"""Block structure at ingestion (issue 11): what each block is, and code kept whole with its introduction."""

from __future__ import annotations

from index.chunking import Chunker, ChunkerSettings
from index.structure import Block, classify_blocks
from index.types import Document

ARTICLE = """Harbour Works Begin
Local News
The council voted on Tuesday to rebuild the old lighthouse on the north pier, and the mayor said the work would begin in March.
What Was Decided
The budget is about two million euros, and the ferry timetable will not change during the works at all.
Sources
Harbour Gazette
"Council backs lighthouse rebuild"
Related Articles
New Ferry Timetable Published For The Summer Season
The summer timetable adds two evening crossings on weekdays.
min read"""


def _kinds(text: str, blocks: list[Block]) -> list[tuple[str, str]]:
    return [(text[b.start : b.end].split("\n")[0][:30], b.kind) for b in blocks]


def _kind_at(text: str, blocks: list[Block], phrase: str) -> str:
    offset = text.index(phrase)
    return next(b.kind for b in blocks if b.start <= offset < b.end)


def test_a_sources_list_and_its_teasers_are_references_not_prose() -> None:
    blocks = classify_blocks(ARTICLE)
    assert _kind_at(ARTICLE, blocks, "The council voted") == "prose"
    assert _kind_at(ARTICLE, blocks, "What Was Decided") == "heading"
    assert _kind_at(ARTICLE, blocks, "Harbour Gazette") == "references"
    assert _kind_at(ARTICLE, blocks, '"Council backs') == "references"
    assert _kind_at(ARTICLE, blocks, "The summer timetable adds") == "references"  # a teaser: never an answer
    assert _kind_at(ARTICLE, blocks, "min read") == "navigation"


def test_hints_from_the_loader_win_over_the_line_classifier() -> None:
    text = "Run this\n\nx = compute(1)\n\nDone."
    blocks = classify_blocks(text, [Block(0, 8, "prose")])
    assert _kinds(text, blocks) == [("Run this", "prose"), ("x = compute(1)", "code"), ("Done.", "prose")]


def test_a_code_block_stays_whole_and_in_the_chunk_of_its_introduction() -> None:
    filler = " ".join(f"Sentence number {n} says something." for n in range(12))
    text = f"{filler}\n\nThe default values are evaluated once, so that\n\ni = 5\nf()\n\nwill print 5. And more text follows."
    intro = text.index("The default")
    code_start = text.index("i = 5")
    document = Document(
        id="d", source="d.txt", title="d", text=text,
        blocks=classify_blocks(text, [Block(code_start, code_start + len("i = 5\nf()"), "code")]),
    )
    chunker = Chunker(count_tokens=lambda t: len(t.split()), settings=ChunkerSettings(chunk_tokens=40, overlap_tokens=8))
    chunks = chunker.split(document)
    holding = [c for c in chunks if "i = 5" in c.text]
    assert holding and all("f()" in c.text and "so that" in c.text and "will print 5." in c.text for c in holding)
    assert all(c.start <= intro and c.end >= text.index("will print 5.") + len("will print 5.") for c in holding)
    assert ("code" in {kind for _, _, kind in holding[0].blocks}) and all(c.token_count <= 40 for c in chunks)
