"""Answer evaluation: does the assistant answer, cite the right passages, and abstain when it should?

``rag eval`` calls :func:`run_answer_suite` for suites with ``kind = "answer"``. A suite names a QA
dataset in BEIR layout whose queries carry gold ``answers`` (SQuAD) and, for out-of-corpus questions,
another dataset whose questions the corpus cannot answer (SciFact claims asked of SQuAD)::

    kind = "answer"
    dataset = "../shared/evaldata/squad_dev_a"

    [answers]
    questions = 1000                  # a seeded sample of the answerable questions (0: none)
    unanswerable_dataset = "../shared/evaldata/scifact"
    unanswerable = 200                # a seeded sample of its queries, asked of this corpus
    seed = 13
    k = 5                             # passages given to the answerer
    mode = "hybrid"
    llm = "extractive"                # or a backend spec such as "openai:MODEL" (see rag.llm)

Metrics (answerable questions count an abstention as a miss):

- ``answer_contains_gold``: a gold answer is inside the answer text (SQuAD normalisation: lower case, no
  punctuation, no articles, single spaces);
- ``answer_f1``: SQuAD token F1 of the answer text against the gold answers (max over golds);
- ``citation_precision``: of the passages cited by answered questions, the share containing a gold answer;
- ``citation_recall``: the share of answerable questions whose citations include the gold paragraph;
- ``abstention_rate`` on unanswerable questions, ``false_abstention_rate`` on answerable ones;
- ``latency_p50_ms``/``latency_p95_ms`` per question (retrieval and answer), ``answer_words``: the average
  length of the answers given (markers removed).

``python -m evals.answers SUITE --index DIR`` runs a suite against an existing index without the runner;
``python -m evals.answers calibrate-citations`` measures the support thresholds of :mod:`rag.answering.citations`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import string
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["normalize_answer", "run_answer_suite", "token_f1"]

_MARKER = re.compile(r"\[\d+(?:\s*[,;-]\s*\d+)*\]")


def without_markers(text: str) -> str:
    """An answer's text with its [n] citation markers blanked out, for comparing its words.

    >>> without_markers("Paris [1] is big [2, 3].")
    'Paris   is big  .'
    """
    return _MARKER.sub(" ", text)


def normalize_answer(text: str) -> str:
    """SQuAD's official normalisation: lower case, punctuation and articles removed, spaces collapsed.

    >>> normalize_answer("The  Denver Broncos!")
    'denver broncos'
    """
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD's token F1 between a prediction and one gold answer.

    >>> round(token_f1("the Denver Broncos won", "Denver Broncos"), 3)
    0.8
    """
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def contains_gold(text: str, golds: Sequence[str]) -> bool:
    """Whether a (normalised) gold answer occurs in the (normalised) text, on word boundaries."""
    padded = f" {normalize_answer(text)} "
    return any(normalize_answer(g) and f" {normalize_answer(g)} " in padded for g in golds)


@dataclass(frozen=True)
class AnswerSuiteSettings:
    """The ``[answers]`` table of a suite."""

    questions: int = 1000
    unanswerable_dataset: str | None = None
    unanswerable: int = 200
    seed: int = 13
    k: int = 5
    mode: str = "hybrid"
    llm: str = "extractive"

    @classmethod
    def from_suite(cls, suite: dict[str, Any]) -> AnswerSuiteSettings:
        table = dict(suite.get("answers", {}))
        known = {name for name in cls.__dataclass_fields__}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"unknown [answers] settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**table)


@dataclass
class QuestionResult:
    """One question's outcome, as kept in the per-query results."""

    id: str
    question: str
    answerable: bool
    answer: str
    abstained: bool
    seconds: float
    cited_documents: list[str] = field(default_factory=list)
    contains_gold: bool = False
    f1: float = 0.0
    cited_with_gold: int = 0
    cites_gold_paragraph: bool = False
    unsupported: int = 0
    confidence: float = 0.0


def _sample(items: list[Any], count: int, seed: int) -> list[Any]:
    if count >= len(items):
        return list(items)
    return random.Random(seed).sample(items, count)


def _resolve(value: str, suite: dict[str, Any]) -> Path:
    """A dataset path of the suite: absolute, else relative to the suite file, else to the repo root."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    suite_dir = Path(suite.get("suite_path", ".")).parent
    for base in (suite_dir, Path(__file__).resolve().parents[1], Path.cwd()):
        if (base / path).exists():
            return (base / path).resolve()
    return path


def _questions(suite: dict[str, Any], settings: AnswerSuiteSettings) -> list[tuple[Any, bool, set[str]]]:
    """(query, answerable, gold document ids) for the sampled answerable and unanswerable questions."""
    from evals.data import read_qrels, read_queries

    chosen: list[tuple[Any, bool, set[str]]] = []
    if settings.questions > 0:
        folder = Path(suite["dataset"])
        qrels = read_qrels(folder / "qrels.tsv")
        answerable = [q for q in read_queries(folder / "queries.jsonl") if q.extra.get("answers") and q.id in qrels]
        if not answerable:
            raise ValueError(f"{folder}: no query has gold 'answers' and a qrels judgement")
        for query in _sample(answerable, settings.questions, settings.seed):
            chosen.append((query, True, set(qrels[query.id])))
    if settings.unanswerable > 0 and settings.unanswerable_dataset:
        folder = _resolve(settings.unanswerable_dataset, suite)
        others = read_queries(folder / "queries.jsonl")
        for query in _sample(others, settings.unanswerable, settings.seed + 1):
            chosen.append((query, False, set()))
    return chosen


def _score(result: QuestionResult, answer: Any, golds: Sequence[str], gold_documents: set[str]) -> None:
    text = without_markers(answer.text)
    result.contains_gold = not answer.abstained and contains_gold(text, golds)
    result.f1 = 0.0 if answer.abstained else max((token_f1(text, g) for g in golds), default=0.0)
    cited = {c.marker: c for c in answer.citations}
    result.cited_with_gold = sum(
        contains_gold(answer.passages[marker - 1].text, golds) for marker in cited if 0 < marker <= len(answer.passages)
    )
    result.cites_gold_paragraph = bool(set(result.cited_documents) & gold_documents)


def run_answer_suite(suite: dict[str, Any], retriever: Any, out_dir: Path) -> dict[str, Any]:
    """Ask every sampled question of ``suite`` through an ``Assistant`` over ``retriever``; return the metrics.

    The result maps metric names to numbers, plus ``per_query`` (question id -> its outcome).
    ``answers.jsonl`` in ``out_dir`` keeps each answer with its citations for reading.
    Raises ``ValueError`` for a bad ``[answers]`` table or a dataset without gold answers.

    Example::

        metrics = run_answer_suite(load_suite("evals/suites/squad_a_answers.toml").as_dict(),
                                   Retriever.open("/tmp/squad-index"), Path("out"))
        metrics["answer_contains_gold"], metrics["citation_precision"]
    """
    from rag.answering.assistant import Assistant
    from rag.llm import load_llm_settings, make_chat_model

    if "judged" in suite:  # hand-written questions with their own judgements (evals.judged_answers)
        from evals.judged_answers import run_judged_suite

        return run_judged_suite(suite, retriever, out_dir)
    settings = AnswerSuiteSettings.from_suite(suite)
    llm = make_chat_model(load_llm_settings(settings.llm))
    assistant = Assistant(retriever, llm, k=settings.k, mode=settings.mode)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: list[QuestionResult] = []
    with open(out_dir / "answers.jsonl", "w", encoding="utf-8") as log:
        for query, answerable, gold_documents in _questions(suite, settings):
            started = time.perf_counter()
            answer = assistant.ask(query.text)
            seconds = time.perf_counter() - started
            result = QuestionResult(
                id=query.id,
                question=query.text,
                answerable=answerable,
                answer=answer.text,
                abstained=answer.abstained,
                seconds=seconds,
                cited_documents=list(dict.fromkeys(c.document_id for c in answer.citations)),
                unsupported=len(answer.unsupported_sentences),
                # Recomputed outside the timing (vectors are cached): what the abstention threshold saw.
                confidence=assistant.extractive.score(query.text, [p.text for p in answer.passages]).confidence,
            )
            if answerable:
                _score(result, answer, query.extra["answers"], gold_documents)
            results.append(result)
            log.write(json.dumps({**asdict(result), "golds": query.extra.get("answers", [])}) + "\n")
            log.flush()  # readable while the suite runs
    metrics = summarise(results)
    metrics["per_query"] = {r.id: asdict(r) for r in results}
    return metrics


def summarise(results: Sequence[QuestionResult]) -> dict[str, float]:
    """The suite's metrics from per-question results (see the module docstring)."""
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    answered = [r for r in answerable if not r.abstained]
    cited = sum(len(r.cited_documents) for r in answered)
    latencies = sorted(r.seconds * 1000 for r in results)
    words = [len(without_markers(r.answer).split()) for r in results if not r.abstained]

    def share(items: Sequence[Any], flag: str) -> float:
        return sum(bool(getattr(r, flag)) for r in items) / len(items) if items else 0.0

    return {
        "questions_answerable": float(len(answerable)),
        "questions_unanswerable": float(len(unanswerable)),
        "answer_contains_gold": share(answerable, "contains_gold"),
        "answer_f1": sum(r.f1 for r in answerable) / len(answerable) if answerable else 0.0,
        "citation_precision": sum(r.cited_with_gold for r in answered) / cited if cited else 0.0,
        "citation_recall": share(answerable, "cites_gold_paragraph"),
        "abstention_rate": share(unanswerable, "abstained"),
        "false_abstention_rate": share(answerable, "abstained"),
        "answer_words": statistics.fmean(words) if words else 0.0,
        "latency_p50_ms": _percentile(latencies, 50),
        "latency_p95_ms": _percentile(latencies, 95),
    }


def _percentile(sorted_values: Sequence[float], percent: float) -> float:
    if not sorted_values:
        return 0.0
    position = min(len(sorted_values) - 1, max(0, round(percent / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[position]


def _main_suite(arguments: argparse.Namespace) -> int:
    from rag.retrieval.retriever import Retriever

    path = Path(arguments.suite)
    suite = tomllib.loads(path.read_text(encoding="utf-8"))
    suite["suite_path"] = str(path.resolve())
    suite["dataset"] = str(_resolve(suite["dataset"], suite))
    if arguments.questions is not None:
        suite.setdefault("answers", {})["questions"] = arguments.questions
    if arguments.unanswerable is not None:
        suite.setdefault("answers", {})["unanswerable"] = arguments.unanswerable
    metrics = run_answer_suite(suite, Retriever.open(arguments.index), Path(arguments.out))
    metrics.pop("per_query")
    print(json.dumps({name: round(value, 4) for name, value in metrics.items()}, indent=2))
    return 0


def calibrate_citations(argv: Sequence[str]) -> int:
    """Measure :func:`rag.answering.citations.check_support` on SciFact: claims against the abstracts that support them
    (should be supported) and against the best-ranked abstract that is not cited for them (should not).

    ``python -m evals.answers calibrate-citations --index SCIFACT_INDEX [--data ../shared/evaldata/scifact]``
    prints the share of each kind judged supported for a grid of thresholds.
    """
    from rag.answering.citations import check_support
    from rag.answering.sentences import EncodingCache
    from rag.retrieval.retriever import Retriever

    parser = argparse.ArgumentParser(prog="python -m evals.answers calibrate-citations")
    parser.add_argument("--index", required=True, help="an index of the SciFact corpus")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/evaldata/scifact"))
    arguments = parser.parse_args(list(argv))
    folder = Path(arguments.data)
    abstracts = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            abstracts[str(record.get("_id", record.get("id")))] = record["text"]
    retriever = Retriever.open(arguments.index)
    vectors = EncodingCache(retriever.embedder.encode)
    measured: dict[str, list[tuple[float, float]]] = {"supporting": [], "other": []}
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        claims = [json.loads(line) for line in handle]
    for claim in claims:
        supporting = [d for d, e in claim.get("evidence", {}).items() if e.get("label") == "SUPPORT"]
        if not supporting:
            continue
        cited = set(claim.get("evidence", {}))
        for document_id in supporting:
            check = check_support(claim["text"], abstracts[document_id], vectors.embed)
            measured["supporting"].append((check.coverage, check.cosine))
        for passage in retriever.search(claim["text"], k=10, per_document=True):
            if passage.document_id not in cited and passage.document_id in abstracts:
                check = check_support(claim["text"], abstracts[passage.document_id], vectors.embed)
                measured["other"].append((check.coverage, check.cosine))
                break
    print(f"pairs: {len(measured['supporting'])} supporting, {len(measured['other'])} other (best-ranked uncited)")
    print("coverage  cosine  supporting-judged-supported  other-judged-supported")
    for coverage in (0.5, 0.6, 0.7, 0.8, 0.9):
        for cosine in (0.6, 0.65, 0.7, 0.75, 0.8, 1.01):
            rates = [
                sum(c >= coverage or s >= cosine for c, s in pairs) / max(len(pairs), 1) for pairs in measured.values()
            ]
            print(f"{coverage:8.2f}  {cosine:6.2f}  {rates[0]:27.3f}  {rates[1]:22.3f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evals.answers SUITE --index DIR [--out DIR]`` or ``... calibrate-citations``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "calibrate-citations":
        return calibrate_citations(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m evals.answers", description=main.__doc__)
    parser.add_argument("suite", help="an answer suite TOML")
    parser.add_argument("--index", required=True, help="an index of the suite's corpus")
    parser.add_argument("--out", default="eval-out/answers", help="where answers.jsonl goes")
    parser.add_argument("--questions", type=int, help="override [answers] questions")
    parser.add_argument("--unanswerable", type=int, help="override [answers] unanswerable")
    return _main_suite(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
