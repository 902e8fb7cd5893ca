"""The folder store and Milvus Lite side by side: adding files, re-adding them unchanged, copying an index in, searching.

    python bench/milvus_vs_folder.py [--corpus ../shared/corpus] [--suite evals/suites/scifact.toml] [--queries 300]

Ingest: ``rag add`` of the corpus into a new folder and into a new Milvus Lite file (load, chunk, embed,
write), the same again with nothing changed, and the write alone (``copy_store`` of the finished folder
index into a new folder and into Milvus Lite: no embedding). Search: the suite's queries against its
cached folder index and the Milvus Lite copy ``rag eval`` makes (``store = "milvus-lite"``), each mode
at k=10, warm, one at a time; wall and CPU time of the process per query (Milvus Lite's engine runs in
threads of this process, so its CPU counts, and can pass the wall time). Prints a table and saves
JSON to bench/figures/milvus_vs_folder.json; nothing here asserts a speed. On a shared machine compare
the CPU columns: other processes' load inflates wall time, not the process's CPU.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
console = Console()


def _timed(function: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def ingest_rows(corpus: Path, workdir: Path) -> list[dict[str, Any]]:
    from index.embedding import load_embedder
    from index.ingest import add_to_index
    from index.stores import copy_store, create_store, open_store

    embedder = load_embedder()
    embedder.embed(["warm up"])
    locations = {"folder": str(workdir / "folder"), "Milvus Lite": f"milvus://{workdir / 'milvus' / 'index.db'}"}
    rows = []
    for backend, location in locations.items():
        report, wall, cpu = _timed(lambda location=location: add_to_index(location, [corpus], embedder=embedder, show_progress=False))
        rows.append({"backend": backend, "step": "add (load, chunk, embed, write)", "wall_s": wall, "cpu_s": cpu,
                     "chunks": report.chunks_embedded})
        again, wall, cpu = _timed(lambda location=location: add_to_index(location, [corpus], embedder=embedder, show_progress=False))
        rows.append({"backend": backend, "step": "add again, unchanged", "wall_s": wall, "cpu_s": cpu,
                     "chunks": again.chunks_embedded})
    source = open_store(locations["folder"])
    chunks = source.counts()[1]
    for backend, target in {"folder": str(workdir / "copy"), "Milvus Lite": f"milvus://{workdir / 'copy.db'}"}.items():
        def copy(target: str = target) -> None:
            store = create_store(target, source.settings)
            copy_store(source, store)
            store.close()

        _, wall, cpu = _timed(copy)
        rows.append({"backend": backend, "step": "write only (copy the finished index in)", "wall_s": wall, "cpu_s": cpu,
                     "chunks": chunks})
    source.close()
    return rows


def search_rows(suite_path: Path, queries: int) -> list[dict[str, Any]]:
    from evals.data import load_dataset
    from evals.indexes import ensure_index
    from evals.suite import load_suite
    from rag import Retriever

    suite = load_suite(suite_path)
    dataset = load_dataset(suite.dataset, corpus=suite.corpus, max_queries=suite.max_queries)
    texts = [query.text for query in dataset.queries][:queries]
    rows = []
    for backend, store in (("folder", "folder"), ("Milvus Lite", "milvus-lite")):
        location = ensure_index(dataset.corpus, replace(suite.index, store=store), show_progress=False)
        retriever = Retriever.open(location)
        for query in texts[:5]:
            retriever.search(query, k=10)  # warm up: model, caches
        for mode in ("dense", "bm25", "hybrid"):
            walls, cpus = [], []
            for query in texts:
                _, wall, cpu = _timed(lambda r=retriever, q=query, m=mode: r.search(q, k=10, mode=m))
                walls.append(wall * 1000)
                cpus.append(cpu * 1000)
            rows.append({
                "backend": backend, "mode": mode, "queries": len(texts), "chunks": retriever.store.counts()[1],
                "wall_p50_ms": statistics.median(walls), "wall_p95_ms": statistics.quantiles(walls, n=20)[-1],
                "cpu_p50_ms": statistics.median(cpus), "cpu_p95_ms": statistics.quantiles(cpus, n=20)[-1],
            })
        retriever.store.close()
    return rows


def main(
    corpus: Annotated[Path, typer.Option(help="Files to add.")] = REPO_ROOT.parent / "shared" / "corpus",
    suite: Annotated[Path, typer.Option(help="Retrieval suite whose queries and index are searched.")] = REPO_ROOT / "evals" / "suites" / "scifact.toml",
    queries: Annotated[int, typer.Option(help="Queries to time per mode.")] = 300,
    out: Annotated[Path, typer.Option(help="JSON output.")] = REPO_ROOT / "bench" / "figures" / "milvus_vs_folder.json",
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    workdir = Path(tempfile.mkdtemp(prefix="milvus-vs-folder-"))
    load_before = os.getloadavg()
    try:
        ingest = ingest_rows(corpus, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    search = search_rows(suite, queries)
    table = Table(title=f"Adding {corpus.name} ({platform.machine()}, {os.cpu_count()} cores, {date.today()})")
    for column in ("step", "backend", "chunks", "wall s", "CPU s"):
        table.add_column(column)
    for row in ingest:
        table.add_row(row["step"], row["backend"], str(row["chunks"]), f"{row['wall_s']:.1f}", f"{row['cpu_s']:.1f}")
    console.print(table)
    table = Table(title=f"Searching {suite.stem}, k=10, one query at a time")
    for column in ("mode", "backend", "chunks", "wall p50/p95 ms", "CPU p50/p95 ms"):
        table.add_column(column)
    for row in search:
        table.add_row(row["mode"], row["backend"], str(row["chunks"]), f"{row['wall_p50_ms']:.1f} / {row['wall_p95_ms']:.1f}",
                      f"{row['cpu_p50_ms']:.1f} / {row['cpu_p95_ms']:.1f}")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": str(date.today()), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "corpus": str(corpus), "suite": str(suite), "ingest": ingest, "search": search,
    }, indent=1) + "\n")
    console.print(f"saved {out}")


if __name__ == "__main__":
    typer.run(main)
