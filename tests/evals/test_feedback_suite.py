"""Feedback from the chat page becomes an answer suite that ``rag eval`` runs and gates on.

The index is a real one of three small notes, asked through the real extractive answerer: the
answers users marked wrong are what that answerer really says.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.feedback import cites_source, questions_from_feedback
from evals.suite import load_suite
from rag import service
from rag.chatlog import Feedback, FeedbackStore
from rag.cli.main import app
from rag.collection import open_collection

runner = CliRunner()

NOTES = {
    "kettle.txt": "Kettle manual\n\nThe kettle switches itself off when the water boils. "
    "Descale the kettle every month with white vinegar.\n",
    "alarm.txt": "Security notes\n\nThe alarm code is changed every spring. The alarm panel is in the hall.\n",
}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from index.ingest import add_to_index

    folder = tmp_path_factory.mktemp("notes")
    for name, text in NOTES.items():
        (folder / name).write_text(text)
    index_dir = tmp_path_factory.mktemp("index") / "notes"
    add_to_index(index_dir, [folder], show_progress=False)
    return index_dir


def _judge(index_dir: Path, question: str, rating: str, **fields: str) -> Feedback:
    """Ask ``question`` as the page does and keep a judgement of the answer it got."""
    collection = open_collection(index_dir)
    answer = service.ask(collection, service.AssistantPool(service.extractive_only()), question, k=3)
    feedback = Feedback(
        question=question,
        rating=rating,
        answer=answer.to_dict(),
        query=answer.query,
        settings={"collection": str(index_dir), "mode": "hybrid", "k": 3},
        **fields,
    )
    return service.record_feedback(collection, feedback)


def test_a_thumbs_down_that_comes_back_fails_the_suite_and_is_named(index_dir: Path, tmp_path: Path) -> None:
    wrong = _judge(index_dir, "When is the alarm code changed?", "down", note="too vague", correct_answer="every spring")
    _judge(index_dir, "When does the kettle switch off?", "up")
    suite_path = tmp_path / "suites" / "feedback.toml"

    written = runner.invoke(app, ["eval", "--from-feedback", "--index", str(index_dir), "--out", str(suite_path)])
    assert written.exit_code == 0, written.output
    assert "2 questions, 1 with answers marked wrong" in written.output
    suite = tomllib.loads(suite_path.read_text())
    alarm = next(q for q in suite["questions"] if q["question"] == "When is the alarm code changed?")
    assert alarm["known_bad"] == [wrong.answer["text"]] and alarm["accepted_answers"] == ["every spring"]
    assert alarm["notes"] == ["too vague"] and alarm["k"] == 3
    kettle = next(q for q in suite["questions"] if q["question"] == "When does the kettle switch off?")
    assert kettle["must_answer"] and kettle["gold_sources"][0].endswith("kettle.txt")
    assert load_suite(suite_path).kind == "feedback"

    # Nothing changed since the thumbs-down, so the answer marked wrong comes back: status 3, named.
    ran = runner.invoke(app, ["eval", str(suite_path), "--out", str(tmp_path / "report"), "--quiet"])
    assert ran.exit_code == 3, ran.output
    assert "came back" in ran.output and "When is the alarm code changed?" in ran.output
    assert (tmp_path / "report" / "report.json").is_file()


def test_a_suite_whose_known_bad_answers_stay_away_passes(index_dir: Path, tmp_path: Path) -> None:
    suite_path = tmp_path / "feedback.toml"
    suite_path.write_text(
        f'name = "feedback"\nkind = "feedback"\nindex_dir = "{index_dir}"\n\n[answers]\nllm = "extractive"\n\n'
        '[[questions]]\nid = "q1"\nquestion = "How often should the kettle be descaled?"\nk = 3\n'
        'accepted_answers = ["every month"]\ngold_sources = ["kettle.txt"]\n'
        'known_bad = ["The alarm panel is in the hall. [1]"]\nmust_answer = true\n'
    )
    ran = runner.invoke(app, ["eval", str(suite_path), "--out", str(tmp_path / "report"), "--quiet"])
    assert ran.exit_code == 0, ran.output
    assert "pass  How often should the kettle be descaled?" in ran.output
    metrics = json.loads((tmp_path / "report" / "report.json").read_text())["runs"][0]["metrics"]
    assert metrics["pass_rate"] == metrics["accepted_answer_rate"] == metrics["gold_source_rate"] == 1.0


def test_judgements_of_one_question_are_merged() -> None:
    answer = {"text": "Never. [1]", "citations": [{"source": "/n/alarm.txt"}], "abstained": False}
    records = [
        Feedback(question="When is it changed?", rating="down", answer=answer, correct_answer="every spring", id="a"),
        Feedback(question="When is it changed?", rating="down", answer=answer, correct_source="alarm.txt", id="b"),
        Feedback(question="When is it changed?", rating="down", answer={"abstained": True, "text": "No."}, id="c"),
    ]
    [merged] = questions_from_feedback(records)
    assert merged.known_bad == ["Never. [1]"] and merged.must_answer
    assert (merged.accepted_answers, merged.gold_sources) == (["every spring"], ["alarm.txt"])
    assert cites_source(["/n/alarm.txt"], "alarm.txt") and not cites_source(["/n/alarm.txt"], "kettle.txt")


def test_no_feedback_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--from-feedback", "--index", str(tmp_path)])
    assert result.exit_code == 1 and "no feedback yet" in result.output
    assert FeedbackStore(tmp_path).all() == []
