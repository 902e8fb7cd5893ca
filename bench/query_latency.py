"""Warm query latency and where it goes: query embedding, FAISS, BM25, SQLite fetch, fusion.

    python bench/query_latency.py [--suite evals/suites/scifact.toml] [--queries 300] [--embedder onnx-int8]

Opens (or builds, cached like `rag eval`) the suite's index, runs its queries the way the suite does
(hybrid, k=100, best chunk per document) after a warm-up, and times each stage by wrapping the
functions that do it; each stage's time excludes the stages it calls. Prints p50/p95 per stage and
saves JSON; nothing here asserts a speed. Run it on an idle machine for figures to compare with; on a
shared one, the row "total CPU (this thread)" is the query's own CPU time, which other processes'
load does not inflate the way it inflates wall time (the search runs on one thread).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]


class StageTimer:
    """Exclusive wall time per named stage for one query at a time (a stage's time leaves out nested stages)."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.per_query: list[dict[str, float]] = []
        self._stack: list[list[float]] = []  # [start, time spent in nested stages]

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append([time.perf_counter(), 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                started, nested = self._stack.pop()
                spent = time.perf_counter() - started
                self.current[name] += (spent - nested) * 1000
                if self._stack:
                    self._stack[-1][1] += spent

        return timed

    def finish_query(self, total_ms: float, cpu_ms: float) -> None:
        stages = dict(self.current)
        stages["other (Python glue)"] = total_ms - sum(stages.values())
        stages["total"] = total_ms
        stages["total CPU (this thread)"] = cpu_ms
        self.per_query.append(stages)
        self.current = defaultdict(float)


def _percentile(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] if len(values) > 1 else values[0]


def main(
    suite: Annotated[Path, typer.Option(help="A retrieval suite whose index and queries to use.")] = REPO_ROOT
    / "evals"
    / "suites"
    / "scifact.toml",
    queries: Annotated[int, typer.Option(help="How many of its queries to time.")] = 300,
    embedder: Annotated[str | None, typer.Option(help="Build/open the index with this embedder.")] = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    out: Annotated[Path, typer.Option(help="Where to save the JSON.")] = REPO_ROOT
    / "bench"
    / "results"
    / "query_latency.json",
) -> None:
    from evals.data import load_dataset
    from evals.indexes import ensure_index
    from evals.suite import load_suite
    from rag.retrieval import retriever as retriever_module
    from rag.retrieval.retriever import Retriever

    parsed = load_suite(suite, embedder=embedder)
    dataset = load_dataset(parsed.dataset, corpus=parsed.corpus, max_queries=parsed.max_queries)
    index_dir = ensure_index(dataset.corpus, parsed.index)
    retriever = Retriever.open(index_dir)
    settings = parsed.retrieval
    texts = [query.text for query in dataset.queries][:queries]

    timer = StageTimer()
    store = retriever.store
    retriever.embedder.embed_query = timer.wrap("query embedding", retriever.embedder.embed_query)
    store.dense_hits = timer.wrap("dense search (FAISS)", store.dense_hits)
    store.bm25_hits = timer.wrap("BM25 search", store.bm25_hits)
    store.document_ids = timer.wrap("document ids (SQLite)", store.document_ids)
    store.get_chunks = timer.wrap("chunk fetch (SQLite)", store.get_chunks)
    retriever_module.fuse = timer.wrap("fusion", retriever_module.fuse)

    for text in texts[:5]:  # warm-up: model session, BM25 matrix, SQLite pages
        retriever.search(text, k=settings.k, mode=mode, per_document=settings.per_document)
    timer.per_query.clear()
    timer.current.clear()
    for text in texts:
        started, cpu_started = time.perf_counter(), time.thread_time()
        retriever.search(text, k=settings.k, mode=mode, per_document=settings.per_document)  # type: ignore[arg-type]
        timer.finish_query((time.perf_counter() - started) * 1000, (time.thread_time() - cpu_started) * 1000)

    stages = list(dict.fromkeys(name for row in timer.per_query for name in row))
    summary = {
        name: {
            "p50_ms": round(_percentile([row.get(name, 0.0) for row in timer.per_query], 50), 3),
            "p95_ms": round(_percentile([row.get(name, 0.0) for row in timer.per_query], 95), 3),
            "mean_ms": round(statistics.fmean(row.get(name, 0.0) for row in timer.per_query), 3),
        }
        for name in stages
    }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {
        "suite": parsed.name,
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1min": load,
        "index": str(index_dir),
        "embedder": retriever.embedder.kind,
        "chunks": store.counts()[1],
        "queries": len(texts),
        "mode": mode,
        "k": settings.k,
        "per_document": settings.per_document,
        "stages": summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table = Table(
        title=f"warm {mode} search, {parsed.name} ({result['chunks']} chunks, {len(texts)} queries, "
        f"{result['embedder']}), {result['machine']}, load {load:.1f}, {result['date']}"
    )
    table.add_column("stage")
    for column in ("p50 ms", "p95 ms", "mean ms"):
        table.add_column(column, justify="right")
    for name, figures in summary.items():
        table.add_row(name, *(f"{value:.2f}" for value in figures.values()))
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
