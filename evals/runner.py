"""Run a suite: open (or build) its index, run every retrieval mode over the queries, score with ranx.

Scoring is ranx's, never ours: each mode's rankings become a ``ranx.Run`` scored against the
qrels. The ranking handed to ranx is scored by rank (``k - rank + 1``), so ties in the
retriever's scores cannot make ranx evaluate another order than the one a user sees.
Answer suites (``kind = "answer"``) are dispatched to ``evals.answers.run_answer_suite``.

>>> retrieval_cutoffs(("ndcg@10", "recall@100"))
[1, 2, 3, 5, 10, 20, 50, 100]
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from evals.data import Dataset, load_dataset
from evals.environment import environment_info
from evals.indexes import ensure_index
from evals.suite import Suite
from rag.retrieval.rerank import CrossEncoderReranker
from rag.retrieval.retriever import Retriever
from rag.types import Passage

CURVE_CUTOFFS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)
"""Where the recall curve of the Markdown report is sampled (up to the suite's depth)."""

PER_QUERY_TOP = 10
"""How many retrieved ids each query keeps in the JSON report (enough to read a failure)."""


@dataclass
class RunResult:
    """One scored run: a retrieval mode (or ``"answer"``), its mean metrics and its per-query results.

    ``metrics`` holds the suite's metrics and ``latency_p50_ms`` / ``latency_p95_ms``;
    ``recall_curve`` maps a cutoff to recall at it; ``per_query`` maps a query id to its own
    metric values, latency and top retrieved ids.
    """

    name: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, Any]] = field(default_factory=dict)
    recall_curve: dict[int, float] = field(default_factory=dict)


@dataclass
class SuiteReport:
    """Everything one ``rag eval`` run produced; written as JSON and Markdown by :mod:`evals.report`."""

    suite: str
    kind: str
    created: str
    settings: dict[str, Any]
    environment: dict[str, Any]
    index_dir: str
    query_count: int
    runs: list[RunResult]

    def run(self, name: str) -> RunResult | None:
        return next((run for run in self.runs if run.name == name), None)


def run_suite(suite: Suite, out_dir: Path, *, show_progress: bool = True, cache_dir: Path | None = None) -> SuiteReport:
    """Run ``suite`` end to end and return its report (writing nothing but the answer runner's own files)."""
    if suite.kind == "feedback":
        return _run_feedback_suite(suite, out_dir)
    dataset = load_dataset(suite.dataset, corpus=suite.corpus, max_queries=suite.max_queries)
    corpus = [dataset.corpus, *suite.extra_corpora] if suite.extra_corpora else dataset.corpus
    index_dir = ensure_index(corpus, suite.index, cache_dir, show_progress=show_progress)
    retriever = Retriever.open(index_dir, reranker=_reranker(suite))
    if suite.kind == "answer":
        runs = _run_answer_suite(suite, retriever, out_dir)
    else:
        corpus_id = corpus_id_function(dataset, suite.corpus_ids)
        # With a reranker each mode runs twice, without and with it: a reranker can also hurt.
        stages = [False, True] if retriever.reranker is not None else [False]
        runs = [
            run_retrieval_mode(dataset, retriever, mode, suite, corpus_id, rerank=rerank, show_progress=show_progress)
            for mode in suite.retrieval.modes
            for rerank in stages
        ]
    return SuiteReport(
        suite=suite.name,
        kind=suite.kind,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        settings=suite.settings(),
        environment=environment_info(),
        index_dir=str(index_dir),
        query_count=len(dataset.queries),
        runs=runs,
    )


def _reranker(suite: Suite) -> CrossEncoderReranker | None:
    settings = suite.retrieval
    if settings.reranker is None:
        return None
    return CrossEncoderReranker(settings.reranker, depth=settings.rerank_depth)


def _run_answer_suite(suite: Suite, retriever: Retriever, out_dir: Path) -> list[RunResult]:
    # Imported here: the answer chain is another engineer's module and pulls in heavier dependencies.
    answers = importlib.import_module("evals.answers")
    result = dict(answers.run_answer_suite(suite.as_dict(), retriever, out_dir))
    per_query = result.pop("per_query", {})
    # A judged suite also reports each split of its questions (dev, heldout) as a run of its own.
    splits = result.pop("splits", {})
    metrics = {name: float(value) for name, value in result.items()}
    runs = [RunResult(name="answer", metrics=metrics, per_query=per_query)]
    for split, split_metrics in splits.items():
        kept = {qid: outcome for qid, outcome in per_query.items() if outcome.get("split") == split}
        runs.append(RunResult(name=split, metrics={k: float(v) for k, v in split_metrics.items()}, per_query=kept))
    return runs


def _run_feedback_suite(suite: Suite, out_dir: Path) -> SuiteReport:
    """A suite of questions users judged, asked of the index they were asked of (``evals.feedback``)."""
    from evals.feedback import run_feedback_suite

    result = dict(run_feedback_suite(suite.as_dict(), out_dir))
    per_query = result.pop("per_query", {})
    return SuiteReport(
        suite=suite.name,
        kind=suite.kind,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        settings=suite.settings(),
        environment=environment_info(),
        index_dir=str(suite.dataset),
        query_count=len(per_query),
        runs=[RunResult(name="feedback", metrics={k: float(v) for k, v in result.items()}, per_query=per_query)],
    )


def corpus_id_function(dataset: Dataset, granularity: str = "document") -> Callable[[Passage], str]:
    """How a retrieved passage is named in the qrels.

    A ``corpus.jsonl`` keeps its own ids; a folder of files is named by each file's path
    relative to the folder (``guide/setup.md``), which is what a hand-written qrels file can say.
    With ``granularity="section"`` the passage's last heading is appended
    (``guide/setup.md#Install``): judgements finer than a file that survive re-chunking.
    """
    root = None if dataset.corpus_is_jsonl else dataset.corpus.resolve()

    def document_id(passage: Passage) -> str:
        if root is None:
            return passage.document_id
        try:
            return Path(passage.source).resolve().relative_to(root).as_posix()
        except ValueError:
            return passage.source

    if granularity == "section":
        return lambda passage: f"{document_id(passage)}#{passage.chunk.heading.split(' > ')[-1]}"
    return document_id


def run_retrieval_mode(
    dataset: Dataset,
    retriever: Retriever,
    mode: str,
    suite: Suite,
    corpus_id: Callable[[Passage], str],
    *,
    rerank: bool = False,
    show_progress: bool = True,
) -> RunResult:
    """Search every query with ``mode`` (reranked when ``rerank`` and the retriever has a reranker),
    time each search, and score the rankings with ranx. The run is named ``mode`` or ``mode+rerank``."""
    settings = suite.retrieval
    name = f"{mode}+rerank" if rerank and retriever.reranker is not None else mode

    def search(text: str) -> list[Passage]:
        return retriever.search(text, k=settings.k, mode=mode, per_document=settings.per_document, rerank=rerank)

    search(dataset.queries[0].text)  # warm-up: loads the model(s), so latency is per query only
    rankings: dict[str, list[str]] = {}
    latencies: dict[str, float] = {}
    with _progress(show_progress) as progress:
        task = progress.add_task(f"{suite.name}: {name}", total=len(dataset.queries))
        for query in dataset.queries:
            started = time.perf_counter()
            passages = search(query.text)
            latencies[query.id] = (time.perf_counter() - started) * 1000
            rankings[query.id] = _unique([corpus_id(passage) for passage in passages])
            progress.advance(task)
    return score_rankings(name, rankings, dataset.qrels, suite.metrics, latencies, settings.k)


def score_rankings(
    name: str,
    rankings: dict[str, list[str]],
    qrels: dict[str, dict[str, int]],
    metrics: tuple[str, ...],
    latencies_ms: dict[str, float],
    depth: int,
) -> RunResult:
    """Score ranked corpus ids per query with ranx; add latency percentiles and the recall curve."""
    from ranx import Qrels, Run, evaluate  # imported late: numba compiles on first import

    curve_metrics = [f"recall@{cutoff}" for cutoff in retrieval_cutoffs(metrics, depth)]
    wanted = list(dict.fromkeys([*metrics, *curve_metrics]))
    run = Run({query_id: _rank_scores(ranking) for query_id, ranking in rankings.items()}, name=name)
    means = evaluate(Qrels(qrels), run, wanted, make_comparable=True)
    means = means if isinstance(means, dict) else {wanted[0]: means}
    result_metrics = {metric: float(means[metric]) for metric in metrics}
    result_metrics.update(latency_summary(list(latencies_ms.values())))
    per_query = {
        query_id: {
            **{metric: round(float(run.scores[metric][query_id]), 6) for metric in metrics},
            "latency_ms": round(latencies_ms.get(query_id, 0.0), 3),
            "retrieved": ranking[:PER_QUERY_TOP],
            "relevant": sorted(qrels.get(query_id, {})),
        }
        for query_id, ranking in rankings.items()
    }
    curve = {int(metric.split("@")[1]): float(means[metric]) for metric in curve_metrics}
    return RunResult(name=name, metrics=result_metrics, per_query=per_query, recall_curve=curve)


def retrieval_cutoffs(metrics: tuple[str, ...], depth: int | None = None) -> list[int]:
    """The recall-curve cutoffs up to the deepest metric (or ``depth`` when given)."""
    deepest = depth or max(int(metric.split("@")[1]) for metric in metrics)
    return [cutoff for cutoff in CURVE_CUTOFFS if cutoff <= deepest]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    """p50 and p95 of per-query latencies in milliseconds (nearest-rank style via ``statistics``)."""
    if len(latencies_ms) < 2:
        only = latencies_ms[0] if latencies_ms else 0.0
        return {"latency_p50_ms": only, "latency_p95_ms": only}
    percentiles = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {"latency_p50_ms": statistics.median(latencies_ms), "latency_p95_ms": percentiles[94]}


def _rank_scores(ranking: list[str]) -> dict[str, float]:
    return {corpus_id: float(len(ranking) - position) for position, corpus_id in enumerate(ranking)}


def _unique(ids: list[str]) -> list[str]:
    # Per-chunk runs can name one document several times; ranx needs each id once, at its best rank.
    return list(dict.fromkeys(ids))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )
