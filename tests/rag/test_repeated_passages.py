"""Passages that repeat better-ranked ones (a page and its PDF print) are passed over when an answer reads k."""

from __future__ import annotations

from index.types import Chunk
from rag.answering.assistant import without_repeats
from rag.types import Passage

# Written for these tests.
BREAK = "4.4. break and continue Statements\n\nThe break statement breaks out of the innermost enclosing loop."
BREAK_PRINTED = "4.4. break and continue Statements\nThe break statement breaks out of the innermost\nenclosing loop."
CONTINUE = "The continue statement continues with the next iteration of the loop."
ELSE = "Loop statements may have an else clause; it runs when no break occurs."


def _passage(text: str, source: str, rank: int) -> Passage:
    return Passage(Chunk(f"c{rank}", source, text, 0, len(text)), 1.0 / rank, rank, "hybrid", source, source)


def test_a_printed_copy_of_a_better_ranked_passage_is_passed_over() -> None:
    passages = [
        _passage(BREAK, "controlflow.html", 1),
        _passage(BREAK_PRINTED, "controlflow.pdf", 2),
        _passage(ELSE, "controlflow.html", 3),
        _passage(CONTINUE, "controlflow.html", 4),
    ]
    kept = without_repeats(passages, 3)
    assert [p.chunk_id for p in kept] == ["c1", "c3", "c4"]


def test_a_passage_holding_more_than_the_one_before_it_is_kept() -> None:
    passages = [_passage(BREAK, "a.html", 1), _passage(BREAK_PRINTED + "\n" + ELSE + " " + CONTINUE, "a.pdf", 2)]
    assert len(without_repeats(passages, 5)) == 2


def test_at_most_k_passages_and_none_lost_without_repeats() -> None:
    passages = [_passage(text, "a.html", rank) for rank, text in enumerate((BREAK, CONTINUE, ELSE), start=1)]
    assert without_repeats(passages, 2) == passages[:2]
    assert without_repeats(passages, 10) == passages
