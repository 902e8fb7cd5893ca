"""Judged answer suites: hand-written questions, each with accepted answers, gold sources and a kind.

``rag eval`` runs a suite with a ``[judged]`` table through :func:`run_judged_suite` (via
``evals.answers.run_answer_suite``). Its dataset's ``queries.jsonl`` holds one question a line::

    {"id": "py-01", "text": "How do I define ...?", "kind": "answerable", "split": "dev",
     "answers": [["default value for one or more arguments"]], "sources": ["python-tutorial/controlflow.html"],
     "code": ["retries=4"], "reject": ["so that ["], "after": "an earlier question (follow-ups)"}

- ``kind``: ``answerable``, ``follow_up`` (asked after ``after``, with that question and its real answer as
  the conversation), ``off_topic`` or ``near_topic`` (the documents do not answer either: the assistant
  should abstain);
- ``answers``: groups of accepted strings; the answer must hold one string of *every* group (two-part
  questions have two groups), compared after SQuAD's normalisation, or after it with punctuation read as
  a word break (:func:`holds_answer`: SQuAD's alone deletes it, so "`fs.readFile()`" became "fsreadfile"
  and never held "readFile");
- ``sources``: gold files, matched against the end of a cited document's path;
- ``code`` (how-to questions): the answer must show one of these lines of the example;
- ``reject``: strings a right answer must not hold (a sentence cut at "so that", the wrong API);
- ``split``: ``dev`` (looked at while tuning), ``heldout`` (seen only in aggregate) or ``unseen`` (never
  used while tuning).

Metrics (each for all questions, and again for each split as runs ``dev``, ``heldout`` and ``unseen``):

- ``right_with_valid_citation``: answerable and follow-up questions whose answer holds every answer group,
  no rejected string, cites a gold source, and whose citations are all valid (the quote is the document's
  text at the cited offsets, the marker is in the text, the check found it supported);
  ``follow_up_right_with_valid_citation`` the same for follow-ups alone;
- ``citation_precision``: of the passages cited by answered (follow-up or answerable) questions, the share
  from a gold source;
- ``abstention_off_topic``, ``abstention_near_topic``; ``false_abstention_rate`` on answerable and follow-ups;
- ``how_to_code_shown``: questions with ``code`` whose answer shows it;
- ``furniture_quoted_rate``: answers (of any kind, not abstained) quoting page furniture or a reference
  list, by the suite's ``[judged] furniture`` patterns (regular expressions);
- ``answer_words``, ``latency_p50_ms``, ``latency_p95_ms`` (not gated).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.answers import AnswerSuiteSettings, _percentile, contains_gold, normalize_answer, without_markers

__all__ = ["JudgedQuestion", "JudgedResult", "holds_answer", "run_judged_suite", "summarise_judged"]

KINDS = ("answerable", "follow_up", "off_topic", "near_topic")


@dataclass(frozen=True)
class JudgedQuestion:
    """One line of a judged suite's ``queries.jsonl`` (see the module docstring)."""

    id: str
    text: str
    kind: str
    split: str
    answers: list[list[str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)
    after: str = ""
    two_part: bool = False

    @property
    def answerable(self) -> bool:
        return self.kind in ("answerable", "follow_up")


@dataclass
class JudgedResult:
    """One question's outcome, as kept in the per-query results."""

    id: str
    question: str
    kind: str
    split: str
    answer: str
    abstained: bool
    seconds: float
    cited_sources: list[str] = field(default_factory=list)
    right: bool = False
    cites_gold: bool = False
    valid_citations: bool = False
    citations: int = 0
    gold_citations: int = 0
    code_expected: bool = False
    code_shown: bool = False
    furniture: bool = False
    confidence: float = 0.0

    @property
    def right_with_valid_citation(self) -> bool:
        return self.right and self.cites_gold and self.valid_citations


def read_judged_questions(path: Path) -> list[JudgedQuestion]:
    """The questions of a judged suite; raises ``ValueError`` naming the line of a malformed one."""
    questions = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                answers = record.get("answers", [])
                if answers and isinstance(answers[0], str):
                    answers = [answers]
                question = JudgedQuestion(
                    id=str(record["id"]),
                    text=str(record["text"]),
                    kind=str(record.get("kind", "answerable")),
                    split=str(record.get("split", "dev")),
                    answers=[list(group) for group in answers],
                    sources=list(record.get("sources", [])),
                    code=list(record.get("code", [])),
                    reject=list(record.get("reject", [])),
                    after=str(record.get("after", "")),
                    two_part=bool(record.get("two_part", False)),
                )
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path}: line {number} is not a judged question ({error})") from None
            if question.kind not in KINDS:
                raise ValueError(f"{path}: line {number}: kind must be one of {', '.join(KINDS)}, got {question.kind!r}")
            if question.answerable and not (question.answers and question.sources):
                raise ValueError(f"{path}: line {number}: an answerable question needs answers and sources")
            if question.kind == "follow_up" and not question.after:
                raise ValueError(f"{path}: line {number}: a follow-up needs the question it comes 'after'")
            questions.append(question)
    return questions


_PUNCTUATION = re.compile(r"[^\w\s]|_")


def holds_answer(text: str, accepted: Sequence[str]) -> bool:
    """Whether ``text`` holds one of the ``accepted`` strings, on word boundaries.

    Compared twice: after SQuAD's normalisation (:func:`evals.answers.contains_gold`), and after it with
    every punctuation mark a space. SQuAD's deletes punctuation, which suits prose but glues code names
    together: an answer naming "`fs.readFile()`" read as "fsreadfile", which does not hold "readFile".

    >>> holds_answer("The `fs.readFile()` method reads a file.", ["readFile"])
    True
    >>> holds_answer("The readFileSync() method", ["readFile"]), holds_answer("Denver's Broncos", ["Denvers"])
    (False, True)
    """
    spaced = _PUNCTUATION.sub(" ", text)
    return contains_gold(text, accepted) or contains_gold(spaced, [_PUNCTUATION.sub(" ", a) for a in accepted])


def _is_gold(source: str, golds: Sequence[str]) -> bool:
    source = Path(source).as_posix()
    return any(source == gold or source.endswith("/" + gold) for gold in golds)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _citations_valid(answer: Any, store: Any) -> bool:
    """Every citation points at a passage, appears in the text, is supported, and quotes its document exactly."""
    if not answer.citations:
        return False
    for citation in answer.citations:
        if not citation.supported or f"[{citation.marker}]" not in answer.text:
            return False
        if not 0 < citation.marker <= len(answer.passages):
            return False
        document = store.get_document(citation.document_id)
        if document is None or _flat(document.text[citation.start : citation.end]) != _flat(citation.quote):
            return False
    return True


def judge(question: JudgedQuestion, answer: Any, seconds: float, store: Any, furniture: Sequence[re.Pattern[str]]) -> JudgedResult:
    """Score one answer against its question's judgements."""
    text = without_markers(answer.text)
    cited = list(dict.fromkeys(c.source for c in answer.citations))
    result = JudgedResult(
        id=question.id,
        question=question.text,
        kind=question.kind,
        split=question.split,
        answer=answer.text,
        abstained=answer.abstained,
        seconds=seconds,
        cited_sources=cited,
    )
    if answer.abstained:
        return result
    result.furniture = any(pattern.search(text) for pattern in furniture)
    if not question.answerable:
        return result
    rejected = any(normalize_answer(r) and normalize_answer(r) in normalize_answer(answer.text) for r in question.reject)
    rejected = rejected or any(r in answer.text for r in question.reject)
    result.right = all(holds_answer(text, group) for group in question.answers) and not rejected
    result.cites_gold = any(_is_gold(source, question.sources) for source in cited)
    result.valid_citations = _citations_valid(answer, store)
    markers = {c.marker: c.source for c in answer.citations}
    result.citations = len(markers)
    result.gold_citations = sum(_is_gold(source, question.sources) for source in markers.values())
    if question.code:
        result.code_expected = True
        shown = _flat(answer.text)
        result.code_shown = any(_flat(line) in shown for line in question.code)
    return result


def summarise_judged(results: Sequence[JudgedResult]) -> dict[str, float]:
    """The suite's metrics from per-question results (see the module docstring)."""
    answerable = [r for r in results if r.kind in ("answerable", "follow_up")]
    follow_ups = [r for r in results if r.kind == "follow_up"]
    answered = [r for r in answerable if not r.abstained]
    how_to = [r for r in answerable if r.code_expected]
    citations = sum(r.citations for r in answered)
    latencies = sorted(r.seconds * 1000 for r in results)
    words = [len(without_markers(r.answer).split()) for r in results if not r.abstained]

    def share(items: Sequence[JudgedResult], test: Any) -> float:
        return sum(bool(test(r)) for r in items) / len(items) if items else 0.0

    return {
        "questions_answerable": float(len(answerable) - len(follow_ups)),
        "questions_follow_up": float(len(follow_ups)),
        "questions_off_topic": float(sum(r.kind == "off_topic" for r in results)),
        "questions_near_topic": float(sum(r.kind == "near_topic" for r in results)),
        "right_with_valid_citation": share(answerable, lambda r: r.right_with_valid_citation),
        "follow_up_right_with_valid_citation": share(follow_ups, lambda r: r.right_with_valid_citation),
        "citation_precision": sum(r.gold_citations for r in answered) / citations if citations else 0.0,
        "abstention_off_topic": share([r for r in results if r.kind == "off_topic"], lambda r: r.abstained),
        "abstention_near_topic": share([r for r in results if r.kind == "near_topic"], lambda r: r.abstained),
        "false_abstention_rate": share(answerable, lambda r: r.abstained),
        "how_to_code_shown": share(how_to, lambda r: r.code_shown),
        "furniture_quoted_rate": share([r for r in results if not r.abstained], lambda r: r.furniture),
        "answer_words": statistics.fmean(words) if words else 0.0,
        "latency_p50_ms": _percentile(latencies, 50),
        "latency_p95_ms": _percentile(latencies, 95),
    }


def _confidence(assistant: Any, question: str, history: Any, answer: Any) -> float:
    """What the abstention threshold saw for this question (recomputed outside the timing; vectors are cached)."""
    standalone = assistant.standalone(question, history)
    scored = standalone.scored  # as Assistant.stream scores it
    context = scored[len(question) :].strip() if scored.startswith(question) else ""
    asked = question if scored.startswith(question) else scored
    resolved = standalone.resolved if standalone.antecedent else ""
    return assistant.extractive.score(asked, answer.passages, context, resolved=resolved).confidence


def run_judged_suite(suite: dict[str, Any], retriever: Any, out_dir: Path) -> dict[str, Any]:
    """Ask every question of a judged suite through an ``Assistant`` over ``retriever``; return the metrics.

    The result maps metric names to numbers, ``per_query`` (question id -> its outcome) and ``splits``
    (split name -> the same metrics over that split's questions). ``answers.jsonl`` in ``out_dir``
    keeps each answer with its citations for reading.
    """
    from rag.answering.assistant import Assistant
    from rag.llm import load_llm_settings, make_chat_model

    settings = AnswerSuiteSettings.from_suite(suite)
    judged = dict(suite.get("judged", {}))
    furniture = [re.compile(pattern, re.MULTILINE) for pattern in judged.get("furniture", [])]
    questions = read_judged_questions(Path(suite["dataset"]) / "queries.jsonl")
    llm = make_chat_model(load_llm_settings(settings.llm))
    assistant = Assistant(retriever, llm, k=settings.k, mode=settings.mode)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    earlier: dict[str, Any] = {}
    results: list[JudgedResult] = []
    with open(out_dir / "answers.jsonl", "w", encoding="utf-8") as log:
        for question in questions:
            history = None
            if question.after:
                if question.after not in earlier:
                    earlier[question.after] = assistant.ask(question.after)
                history = [
                    {"role": "user", "content": question.after},
                    {"role": "assistant", "content": earlier[question.after].text},
                ]
            started = time.perf_counter()
            answer = assistant.ask(question.text, history=history)
            seconds = time.perf_counter() - started
            result = judge(question, answer, seconds, retriever.store, furniture)
            result.confidence = _confidence(assistant, question.text, history, answer)
            results.append(result)
            quotes = [{"marker": c.marker, "source": c.source, "quote": c.quote} for c in answer.citations]
            log.write(json.dumps({**asdict(result), "citations": quotes}) + "\n")
            log.flush()
    how_to = {q.id for q in questions if q.code}
    for result in results:
        result.code_expected = result.id in how_to  # an abstained how-to question counts as code not shown
    metrics: dict[str, Any] = summarise_judged(results)
    metrics["splits"] = {
        split: summarise_judged([r for r in results if r.split == split])
        for split in dict.fromkeys(q.split for q in questions)
    }
    metrics["per_query"] = {r.id: {**asdict(r), "right_with_valid_citation": r.right_with_valid_citation} for r in results}
    return metrics
