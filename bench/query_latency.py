"""Warm query latency and where it goes: query embedding, FAISS, BM25, SQLite fetch, fusion.

    python bench/query_latency.py [--suite evals/suites/scifact.toml] [--queries 300] [--embedder onnx-int8]

Opens (or builds, cached like `rag eval`) the suite's index, runs its queries the way the suite does
(hybrid, k=100, best chunk per document) after a warm-up, and times each stage by wrapping the
functions that do it; each stage's time excludes the stages it calls. Prints wall and CPU p50/p95
per stage and saves JSON; nothing here asserts a speed. Run it on an idle machine for wall figures to
compare with; on a shared one read the CPU columns (a stage's CPU is its thread's, the total the
whole process's), which other processes' load does not inflate the way it inflates wall time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
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


OVERLAPPED = " (on a second thread)"
"""Suffix of a stage that ran beside the searching thread (a hybrid search's BM25): its time is not part
of the wall total's sum, so "other" leaves it out."""


class StageTimer:
    """Exclusive wall and CPU time per named stage for one query at a time (a stage's time leaves out nested stages).

    CPU time is the running thread's (``time.thread_time``): what other processes' load does not inflate.
    A stage that runs on another thread than the searching one is reported under its name with
    ``OVERLAPPED`` appended.
    """

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.current_cpu: dict[str, float] = defaultdict(float)
        self.per_query: list[dict[str, float]] = []
        self.per_query_cpu: list[dict[str, float]] = []
        self._local = threading.local()  # per thread: [start, cpu start, wall in nested stages, cpu in nested stages]
        self._lock = threading.Lock()
        self._searching_thread = threading.get_ident()

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])
            stack.append([time.perf_counter(), time.thread_time(), 0.0, 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                started, cpu_started, nested, nested_cpu = stack.pop()
                spent, cpu_spent = time.perf_counter() - started, time.thread_time() - cpu_started
                stage = name if threading.get_ident() == self._searching_thread else name + OVERLAPPED
                with self._lock:
                    self.current[stage] += (spent - nested) * 1000
                    self.current_cpu[stage] += (cpu_spent - nested_cpu) * 1000
                if stack:
                    stack[-1][2] += spent
                    stack[-1][3] += cpu_spent

        return timed

    def finish_query(self, total_ms: float, cpu_ms: float) -> None:
        for stages, total, per_query, overlapped_count in (
            (dict(self.current), total_ms, self.per_query, False),
            (dict(self.current_cpu), cpu_ms, self.per_query_cpu, True),  # the process's CPU includes every thread
        ):
            counted = (value for stage, value in stages.items() if overlapped_count or not stage.endswith(OVERLAPPED))
            stages["other (Python glue)"] = total - sum(counted)
            stages["total"] = total
            per_query.append(stages)
        self.current = defaultdict(float)
        self.current_cpu = defaultdict(float)


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

    # Warm-up on queries that are not timed (a query embedding cache would otherwise answer the first
    # timed ones): model session, BM25 statistics, SQLite pages.
    for text in [query.text for query in dataset.queries][queries : queries + 5] or ["warm-up query"]:
        retriever.search(text, k=settings.k, mode=mode, per_document=settings.per_document)
    timer.per_query.clear()
    timer.per_query_cpu.clear()
    timer.current.clear()
    timer.current_cpu.clear()
    for text in texts:
        # CPU of the whole process: the search may hand work to another thread
        started, cpu_started = time.perf_counter(), time.process_time()
        retriever.search(text, k=settings.k, mode=mode, per_document=settings.per_document)  # type: ignore[arg-type]
        timer.finish_query((time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000)

    stages = list(dict.fromkeys(name for row in timer.per_query for name in row))

    def figures(rows: list[dict[str, float]], name: str) -> dict[str, float]:
        values = [row.get(name, 0.0) for row in rows]
        return {
            "p50_ms": round(_percentile(values, 50), 3),
            "p95_ms": round(_percentile(values, 95), 3),
            "mean_ms": round(statistics.fmean(values), 3),
        }

    summary = {name: figures(timer.per_query, name) for name in stages}
    cpu_summary = {name: figures(timer.per_query_cpu, name) for name in stages}
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
        "stages_cpu": cpu_summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table = Table(
        title=f"warm {mode} search, {parsed.name} ({result['chunks']} chunks, {len(texts)} queries, "
        f"{result['embedder']}), {result['machine']}, load {load:.1f}, {result['date']}"
    )
    table.add_column("stage")
    for column in ("wall p50 ms", "wall p95 ms", "wall mean ms", "CPU p50 ms", "CPU p95 ms"):
        table.add_column(column, justify="right")
    for name, wall in summary.items():
        cpu = cpu_summary[name]
        table.add_row(name, *(f"{value:.2f}" for value in (*wall.values(), cpu["p50_ms"], cpu["p95_ms"])))
    Console(width=160).print(table)


if __name__ == "__main__":
    typer.run(main)
