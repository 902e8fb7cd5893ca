"""Feedback from the chat page as an answer suite: what users marked wrong must not come back.

``rag eval --from-feedback [--index DIR] [--out suites/feedback.toml]`` reads the thumbs kept in
the index folder's ``chat.sqlite`` (:class:`rag.chatlog.FeedbackStore`) and writes a suite file
(:func:`write_feedback_suite`); ``rag eval suites/feedback.toml`` asks every question again,
through the same functions as the page (:mod:`rag.service`), and exits with status 3 when an
answer users marked wrong comes back, or it abstains where users expect an answer. A suite looks like::

    name = "feedback"
    kind = "feedback"
    index_dir = "/home/ada/.local/share/rag-assistant/default"   # the index the questions were asked of

    [answers]
    llm = "extractive"                     # the answer backend to ask with

    [[questions]]
    id = "3f2a9c0d1e7b4a55"
    question = "And when is it changed?"
    history = [{role = "user", content = "What is the alarm code for?"}, {role = "assistant", content = "..."}]
    query = "And when is it changed? alarm code"   # the standalone query it was answered from (for reading)
    mode = "hybrid"
    k = 5
    accepted_answers = ["every spring"]    # a right answer contains one of these (SQuAD normalisation)
    gold_sources = ["notes/alarm.txt"]     # a right answer cites one of these (a path or its end)
    known_bad = ["The alarm code is never changed. [1]"]   # answers users marked wrong: must not come back
    must_answer = false                    # true when users marked an abstention wrong, or liked an answer
    notes = ["it is changed every spring"]

A thumbs-down gives a known-bad answer, and its correction (a short answer, or the document that
holds it) the accepted answers or gold sources; a thumbs-up gives the sources the liked answer cited
as gold sources, so a change that loses them shows. Judgements of the same question (and
conversation before it) are merged into one entry.

Metrics: ``pass_rate`` (no known-bad answer, an accepted answer and a gold source where given, no
abstention where an answer is expected), ``known_bad_returned``, ``false_abstention_rate``,
``questions_total``, and ``accepted_answer_rate`` and ``gold_source_rate`` when some question has
accepted answers or gold sources.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from evals.answers import contains_gold, normalize_answer, without_markers
from rag.chatlog import CHATLOG_NAME, Feedback, FeedbackStore

DEFAULT_SUITE_PATH = Path("suites") / "feedback.toml"
SUITE_KIND = "feedback"


class FeedbackSuiteError(ValueError):
    """No feedback to make a suite of, or a feedback suite that cannot be read."""


@dataclass
class FeedbackQuestion:
    """One question of a feedback suite (the fields of a ``[[questions]]`` table)."""

    id: str
    question: str
    history: list[dict[str, str]] = field(default_factory=list)
    query: str = ""
    mode: str = "hybrid"
    k: int = 5
    accepted_answers: list[str] = field(default_factory=list)
    gold_sources: list[str] = field(default_factory=list)
    known_bad: list[str] = field(default_factory=list)
    must_answer: bool = False
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> FeedbackQuestion:
        known = set(cls.__dataclass_fields__)
        unknown = set(table) - known
        if unknown:
            raise FeedbackSuiteError(f"{where}: unknown question fields {sorted(unknown)}")
        if not str(table.get("question", "")).strip():
            raise FeedbackSuiteError(f"{where}: a question has no text")
        return cls(**{key: value for key, value in table.items() if key in known})


def _add_unique(items: list[str], value: str) -> None:
    if value and value not in items:
        items.append(value)


def questions_from_feedback(records: Sequence[Feedback]) -> list[FeedbackQuestion]:
    """Merge judgements into suite questions, one per (question, conversation before it), oldest first."""
    merged: dict[str, FeedbackQuestion] = {}
    for record in records:
        key = json.dumps([record.question.strip(), record.history], sort_keys=True)
        settings = record.settings or {}
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = FeedbackQuestion(
                id=record.id,
                question=record.question.strip(),
                history=[{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in record.history],
                query=record.query,
                mode=str(settings.get("mode") or "hybrid"),
                k=int(settings.get("k") or 5),
            )
        answer = record.answer or {}
        abstained = bool(answer.get("abstained"))
        if record.rating == "up":
            entry.must_answer = entry.must_answer or not abstained
            for citation in answer.get("citations", []):
                _add_unique(entry.gold_sources, str(citation.get("source", "")))
        else:
            if abstained:
                entry.must_answer = True
            else:
                _add_unique(entry.known_bad, str(answer.get("text", "")).strip())
            _add_unique(entry.accepted_answers, record.correct_answer.strip())
            _add_unique(entry.gold_sources, record.correct_source.strip())
        _add_unique(entry.notes, record.note.strip())
    return list(merged.values())


def feedback_suite(index_dir: str | Path, llm: str = "extractive", name: str = "feedback") -> dict[str, Any]:
    """The suite (as plain data) of the feedback kept in ``index_dir``. Raises ``FeedbackSuiteError`` when there is none."""
    index_dir = Path(index_dir).expanduser().resolve()
    records = FeedbackStore(index_dir).all()
    if not records:
        raise FeedbackSuiteError(
            f"{index_dir / CHATLOG_NAME}: no feedback yet; give answers a thumbs up or down in the chat page first"
        )
    questions = questions_from_feedback(records)
    return {
        "name": name,
        "kind": SUITE_KIND,
        "index_dir": str(index_dir),
        "answers": {"llm": llm},
        "questions": [_table(q) for q in questions],
    }


def _table(question: FeedbackQuestion) -> dict[str, Any]:
    """A question as a TOML table, leaving out empty fields so the file reads easily."""
    table = asdict(question)
    return {key: value for key, value in table.items() if value not in ([], "") or key in ("id", "question")}


def write_feedback_suite(
    index_dir: str | Path, out: str | Path = DEFAULT_SUITE_PATH, llm: str = "extractive"
) -> tuple[Path, dict[str, Any]]:
    """Write the suite of ``index_dir``'s feedback to ``out`` (TOML); returns the path and the suite."""
    import tomlkit  # a TOML writer that keeps comments; Gradio depends on it too

    suite = feedback_suite(index_dir, llm=llm, name=Path(out).stem)
    document = tomlkit.document()
    document.add(tomlkit.comment(f"Questions users judged in the chat page, from {suite['index_dir']}/{CHATLOG_NAME}"))
    document.add(tomlkit.comment(f"written by `rag eval --from-feedback` on {datetime.now():%Y-%m-%d %H:%M}."))
    document.add(tomlkit.comment(f"Run: rag eval {out}   (exit status 3 when an answer marked wrong comes back)"))
    for key in ("name", "kind", "index_dir"):
        document.add(key, suite[key])
    document.add(tomlkit.nl())
    document.add("answers", suite["answers"])
    questions = tomlkit.aot()
    for question in suite["questions"]:
        table = tomlkit.table()
        for key, value in question.items():
            if key == "history":
                array = tomlkit.array()
                for message in value:
                    inline = tomlkit.inline_table()
                    inline.update(message)
                    array.append(inline)
                table.add(key, array)
            else:
                table.add(key, value)
        questions.append(table)
    document.add("questions", questions)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tomlkit.dumps(document), encoding="utf-8")
    return out, suite


# ---- running a feedback suite ---------------------------------------------------------------------


@dataclass
class FeedbackResult:
    """What one question got this time, and how it compares with what users said."""

    id: str
    question: str
    answer: str
    abstained: bool
    seconds: float
    known_bad_returned: bool = False
    accepted: bool | None = None
    cites_gold: bool | None = None
    false_abstention: bool = False
    cited_sources: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            not self.known_bad_returned
            and self.accepted is not False
            and self.cites_gold is not False
            and not self.false_abstention
        )


def same_answer(text: str, known_bad: str) -> bool:
    """Whether an answer is a known-bad one again: equal once markers, case, punctuation and articles are ignored.

    >>> same_answer("The code is never changed. [1]", "the code is never changed [2]")
    True
    """
    return normalize_answer(without_markers(text)) == normalize_answer(without_markers(known_bad))


def cites_source(sources: Sequence[str], wanted: str) -> bool:
    """Whether one of ``sources`` (absolute paths or ids) is ``wanted``: the same path, or ending in it.

    >>> cites_source(["/home/ada/notes/alarm.txt"], "notes/alarm.txt"), cites_source(["/x/alarm.txt"], "larm.txt")
    (True, False)
    """
    wanted = wanted.strip().replace("\\", "/").lstrip("/")
    return any(source == wanted or source.replace("\\", "/").endswith("/" + wanted) for source in sources)


def judge(question: FeedbackQuestion, answer: Any, seconds: float) -> FeedbackResult:
    """Compare an ``Answer`` with what users said about ``question``."""
    text = without_markers(answer.text)
    sources = list(dict.fromkeys(c.source for c in answer.citations))
    result = FeedbackResult(
        id=question.id,
        question=question.question,
        answer=answer.text,
        abstained=answer.abstained,
        seconds=seconds,
        cited_sources=sources,
    )
    result.known_bad_returned = not answer.abstained and any(same_answer(answer.text, bad) for bad in question.known_bad)
    if question.accepted_answers:
        result.accepted = not answer.abstained and contains_gold(text, question.accepted_answers)
    if question.gold_sources:
        result.cites_gold = any(cites_source(sources, gold) for gold in question.gold_sources)
    result.false_abstention = answer.abstained and question.must_answer
    return result


def load_questions(suite: dict[str, Any]) -> list[FeedbackQuestion]:
    where = str(suite.get("suite_path", "the suite"))
    tables = suite.get("questions")
    if not isinstance(tables, list) or not tables:
        raise FeedbackSuiteError(f"{where}: no [[questions]]")
    return [FeedbackQuestion.from_table(dict(table), f"{where}, question {n}") for n, table in enumerate(tables, 1)]


def run_feedback_suite(suite: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Ask every question of a feedback suite of its index; return the metrics and ``per_query`` results.

    ``answers.jsonl`` in ``out_dir`` keeps each answer and its verdict. Raises ``FeedbackSuiteError``
    for a malformed suite, ``IndexStoreError`` when the index cannot be opened.
    """
    from rag import service
    from rag.collection import open_collection

    questions = load_questions(suite)
    llm = str(dict(suite.get("answers") or {}).get("llm", "extractive"))
    collection = open_collection(suite["index_dir"], warm_up=True)
    assistants = service.AssistantPool(service.configured_backends(llm))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[FeedbackResult] = []
    with open(out_dir / "answers.jsonl", "w", encoding="utf-8") as log:
        for question in questions:
            started = time.perf_counter()
            answer = service.ask(
                collection, assistants, question.question, question.history, k=question.k, mode=question.mode
            )
            result = judge(question, answer, time.perf_counter() - started)
            results.append(result)
            log.write(json.dumps({**asdict(result), "passed": result.passed}) + "\n")
    metrics = summarise(results)
    metrics["per_query"] = {r.id: {**asdict(r), "passed": r.passed} for r in results}
    return metrics


def summarise(results: Sequence[FeedbackResult]) -> dict[str, float]:
    def share(items: Sequence[Any]) -> float:
        return sum(bool(item) for item in items) / len(items) if items else 0.0

    latencies = sorted(r.seconds * 1000 for r in results)
    accepted = [r.accepted for r in results if r.accepted is not None]
    cited = [r.cites_gold for r in results if r.cites_gold is not None]
    metrics = {
        "questions_total": float(len(results)),
        "pass_rate": share([r.passed for r in results]),
        "known_bad_returned": share([r.known_bad_returned for r in results]),
        "false_abstention_rate": share([r.false_abstention for r in results]),
        "latency_p50_ms": latencies[len(latencies) // 2] if latencies else 0.0,
    }
    # Only where some question has them: a rate of nothing would read as 0.
    if accepted:
        metrics["accepted_answer_rate"] = share(accepted)
    if cited:
        metrics["gold_source_rate"] = share(cited)
    return metrics
