"""The judged answer suite (shared_corpus_answers): its questions parse, and each judgement counts what it says."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from evals.judged_answers import JudgedQuestion, holds_answer, judge, read_judged_questions, summarise_judged
from evals.suite import REPO_ROOT, load_suite
from index.types import Chunk, Document
from rag.types import Answer, Citation, Passage

SUITE = REPO_ROOT / "evals" / "suites" / "shared_corpus_answers.toml"


def test_the_shipped_suite_has_the_questions_the_issue_asks_for() -> None:
    suite = load_suite(SUITE)
    assert suite.kind == "answer" and suite.corpus == (REPO_ROOT.parent / "shared" / "corpus").resolve()
    assert suite.extra_corpora == (REPO_ROOT / "docs",)
    questions = read_judged_questions(suite.dataset / "queries.jsonl")
    kinds = Counter(q.kind for q in questions)
    assert len(questions) == 104 and (kinds["follow_up"], kinds["off_topic"], kinds["near_topic"]) == (15, 13, 14)
    splits = Counter(q.split for q in questions)
    assert splits == {"dev": 33, "heldout": 41, "unseen": 30} and len({q.id for q in questions}) == len(questions)
    assert len({q.text for q in questions}) == len(questions)
    texts = {q.text: q for q in questions}
    assert texts["And how do I remove them?"].after == "How do I add files to the index?"
    assert texts["What happens when one is not supported?"].after == "How are citations checked?"
    assert all(q.answers and q.sources for q in questions if q.answerable)
    furniture = [re.compile(p) for p in suite.raw["judged"]["furniture"]]
    assert any(p.search("11/26/26, 9:19 PM 4. More Control Flow Tools") for p in furniture)


@dataclass
class _Store:
    text: str

    def get_document(self, document_id: str) -> Document:
        return Document(id=document_id, source=document_id, title="t", text=self.text)


TEXT = "Intro line.\nThe talks were confirmed by Bessent in Beijing. Sources: Bessent tells CNBC"


def _answer(text: str, quote: str, source: str = "/x/news/a.txt", supported: bool = True) -> Answer:
    start = TEXT.index(quote)
    chunk = Chunk("c1", source, TEXT, 0, len(TEXT))
    passage = Passage(chunk, 1.0, 1, "hybrid", source, "t")
    citation = Citation(1, source, "c1", source, "t", None, start, start + len(quote), quote, supported)
    return Answer(text=text, citations=[citation], passages=[passage])


QUESTION = JudgedQuestion("q", "Who confirmed the talks?", "answerable", "dev", [["Bessent"]], ["news/a.txt"])


def test_a_right_answer_with_a_valid_citation_counts() -> None:
    quote = "The talks were confirmed by Bessent in Beijing."
    result = judge(QUESTION, _answer(f"{quote} [1]", quote), 0.1, _Store(TEXT), [])
    assert result.right_with_valid_citation and result.gold_citations == 1


@pytest.mark.parametrize(
    ("source", "supported", "quote_offsets_wrong"),
    [("/x/other/b.txt", True, False), ("/x/news/a.txt", False, False), ("/x/news/a.txt", True, True)],
)
def test_a_wrong_source_an_unsupported_or_misplaced_quote_is_not_valid(
    source: str, supported: bool, quote_offsets_wrong: bool
) -> None:
    quote = "The talks were confirmed by Bessent in Beijing."
    answer = _answer(f"{quote} [1]", quote, source, supported)
    if quote_offsets_wrong:
        citation = answer.citations[0]
        answer.citations[0] = Citation(**{**citation.to_dict(), "start": 0})
    assert not judge(QUESTION, answer, 0.1, _Store(TEXT), []).right_with_valid_citation


def test_a_code_name_holds_the_accepted_name_it_is_written_with() -> None:
    # SQuAD's normalisation alone deleted the punctuation of "`fs.readFile()`" ("fsreadfile"), so the
    # answer naming the right method was judged wrong (node-05 of shared_corpus_answers).
    answer = "The `fs.readFile()` method asynchronously reads the contents of a file into memory."
    assert holds_answer(answer, ["readFile"]) and holds_answer(answer, ["fs.readFile"])
    assert holds_answer('Use if __name__ == "__main__": at the end.', ['__name__ == "__main__"'])
    assert not holds_answer("The `fs.readFileSync()` method reads it.", ["readFile"])
    assert not holds_answer("Read the file with open().", ["readFile"])
    question = JudgedQuestion("n", "How do I read a file?", "answerable", "dev", [["readFile"]], ["news/a.txt"])
    quote = "The talks were confirmed by Bessent in Beijing."
    assert judge(question, _answer(f"{quote} `fs.readFile()` [1]", quote), 0.1, _Store(TEXT), []).right


def test_rejected_text_furniture_and_abstention_are_judged() -> None:
    rejecting = JudgedQuestion(**{**QUESTION.__dict__, "reject": ["Sources:"]})
    quote = "Sources: Bessent tells CNBC"
    furniture = [re.compile("Bessent tells CNBC")]
    result = judge(rejecting, _answer(f"{quote} [1]", quote), 0.1, _Store(TEXT), furniture)
    assert not result.right and result.furniture
    off_topic = JudgedQuestion("o", "Capital of Peru?", "off_topic", "heldout")
    abstained = judge(off_topic, Answer(text="The documents don't answer this question.", abstained=True), 0.1, _Store(TEXT), [])
    metrics = summarise_judged([result, abstained])
    assert metrics["abstention_off_topic"] == 1.0 and metrics["furniture_quoted_rate"] == 1.0
    assert metrics["right_with_valid_citation"] == 0.0 and metrics["questions_off_topic"] == 1.0


def test_a_suite_with_several_corpus_folders_resolves_each(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = tmp_path / "suite.toml"
    path.write_text('kind = "answer"\ndataset = "."\ncorpus = ["a", "b"]\n')
    suite = load_suite(path)
    assert suite.corpus == (tmp_path / "a").resolve() and suite.extra_corpora == ((tmp_path / "b").resolve(),)
    assert suite.as_dict()["extra_corpora"] == [str((tmp_path / "b").resolve())]
