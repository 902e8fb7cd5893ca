"""Our ingest and search beside the pipeline LangChain's RAG tutorial teaches, in one run on the same data.

    pip install -e ".[bench]"          # langchain-huggingface, langchain-community, matplotlib
    python bench/vs_langchain.py compare [--data ../shared/evaldata/scifact] [--max-docs N] [--out bench/results]

LangChain's pipeline, as its RAG tutorial builds it: each record a Document (title and text),
``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``, ``HuggingFaceEmbeddings``
with the same packaged all-MiniLM-L6-v2 (a local path, offline), ``FAISS.from_documents``, saved
with ``save_local``. Ours: ``rag add`` of the corpus file with the defaults (200-token chunks, int8
ONNX embedder, SQLite + FAISS + BM25 on disk). Each pipeline runs in its own subprocess, so its
peak RSS is its own, and reports: ingest wall time (from reading the corpus to a saved index),
chunks and chunks/s, peak RSS during ingest, warm search p50/p95 over the queries (k=100, the best
chunk per document), and nDCG@10 scored by ranx. Prints a table, saves JSON and a bar chart (PNG).
Nothing here asserts a speed; read the figures as ratios when the machine is shared.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "evaldata" / "scifact"
DEPTH = 100
"""Chunks (LangChain) or documents (ours) retrieved a query, as the SciFact suite does."""

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """This process's CPU time so far (user + system, all threads): the work done, whatever the load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _subset(data: Path, max_docs: int, folder: Path) -> Path:
    """A BEIR folder of at most ``max_docs`` documents: every judged one first, then the corpus in order.

    Keeps every query and qrel, so nDCG@10 is measured on the same questions; the unjudged documents
    are the distractors. For a quicker run of both pipelines on a shared machine.
    """
    _, qrels = _queries_and_qrels(data)  # qrels.tsv or BEIR's qrels/test.tsv, as the suites read them
    judged = {doc_id for judgements in qrels.values() for doc_id in judgements}
    kept: list[str] = []
    others: list[str] = []
    with open(data / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            (kept if str(record.get("_id", record.get("id"))) in judged else others).append(line)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join((kept + others)[:max_docs]), encoding="utf-8")
    (folder / "queries.jsonl").write_bytes((data / "queries.jsonl").read_bytes())
    rows = [f"{query_id}\t{doc_id}\t{score}" for query_id, docs in qrels.items() for doc_id, score in docs.items()]
    (folder / "qrels.tsv").write_text("\n".join(["query-id\tcorpus-id\tscore", *rows]) + "\n", encoding="utf-8")
    return folder


def _queries_and_qrels(data: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    from evals.data import load_dataset

    dataset = load_dataset(data)
    return {query.id: query.text for query in dataset.queries}, dataset.qrels


def _timed_searches(search: Any, queries: dict[str, str]) -> tuple[dict[str, list[str]], list[float]]:
    """Each query's ranked document ids (best chunk per document) and its latency in ms, after a warm-up."""
    first = next(iter(queries.values()))
    search(first)
    rankings, latencies = {}, []
    for query_id, text in queries.items():
        started = time.perf_counter()
        ranking = search(text)
        latencies.append((time.perf_counter() - started) * 1000)
        rankings[query_id] = list(dict.fromkeys(ranking))
    return rankings, latencies


def _ndcg_at_10(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    from ranx import Qrels, Run, evaluate

    run = Run({qid: {doc: float(len(ids) - i) for i, doc in enumerate(ids)} for qid, ids in rankings.items()})
    return float(evaluate(Qrels(qrels), run, "ndcg@10", make_comparable=True))


def _search_figures(rankings: dict[str, list[str]], latencies: list[float], qrels: dict[str, dict[str, int]]) -> dict:
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "search_p50_ms": statistics.median(latencies),
        "search_p95_ms": percentiles[94],
        "ndcg@10": _ndcg_at_10(rankings, qrels),
        "queries": len(rankings),
    }


@app.command("langchain")
def run_langchain(data: Path, workdir: Path) -> None:
    """One pipeline: LangChain's tutorial RAG indexing (runs in its own process; prints JSON)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from index.embedding import resolve_model_path

    documents = []
    with open(data / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            text = "\n\n".join(part for part in (record.get("title", ""), record["text"]) if part)
            documents.append(Document(page_content=text, metadata={"id": str(record.get("_id", record.get("id")))}))
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    splits = splitter.split_documents(documents)
    embeddings = HuggingFaceEmbeddings(model_name=resolve_model_path("all-MiniLM-L6-v2"))
    store = FAISS.from_documents(splits, embeddings)
    store.save_local(str(workdir / "langchain-faiss"))
    ingest_seconds = time.perf_counter() - started
    ingest_cpu_seconds = _cpu_seconds()
    peak = _peak_rss_mb()

    queries, qrels = _queries_and_qrels(data)

    def search(text: str) -> list[str]:
        return [doc.metadata["id"] for doc, _ in store.similarity_search_with_score(text, k=DEPTH)]

    rankings, latencies = _timed_searches(search, queries)
    result = {
        "pipeline": "LangChain tutorial (1000/200 characters, HuggingFaceEmbeddings, FAISS)",
        "ingest_seconds": ingest_seconds,
        "ingest_cpu_seconds": ingest_cpu_seconds,
        "chunks": len(splits),
        "peak_rss_mb": peak,
        **_search_figures(rankings, latencies, qrels),
    }
    print(json.dumps(result))


@app.command("ours")
def run_ours(data: Path, workdir: Path, mode: str = "hybrid") -> None:
    """One pipeline: `rag add` with the defaults, then searches (runs in its own process; prints JSON)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    started = time.perf_counter()
    from index.ingest import add_to_index

    index_dir = workdir / "ours"
    report = add_to_index(index_dir, [data / "corpus.jsonl"], show_progress=False)
    ingest_seconds = time.perf_counter() - started
    ingest_cpu_seconds = _cpu_seconds()
    peak = _peak_rss_mb()

    from rag.retrieval.retriever import Retriever

    retriever = Retriever.open(index_dir)
    queries, qrels = _queries_and_qrels(data)
    figures = {}
    for search_mode in ("hybrid", "dense"):

        def search(text: str, search_mode: str = search_mode) -> list[str]:
            passages = retriever.search(text, k=DEPTH, mode=search_mode, per_document=True)  # type: ignore[arg-type]
            return [passage.document_id for passage in passages]

        figures[search_mode] = _search_figures(*_timed_searches(search, queries), qrels)
    result = {
        "pipeline": f"ours (rag add defaults: 200-token chunks, {retriever.embedder.kind}, hybrid search)",
        "ingest_seconds": ingest_seconds,
        "ingest_cpu_seconds": ingest_cpu_seconds,
        "chunks": report.chunks_embedded,
        "peak_rss_mb": peak,
        **figures["hybrid"],
        "dense_only": figures["dense"],
    }
    print(json.dumps(result))


def _run_pipeline(name: str, data: Path, workdir: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), name, str(data), str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the {name} pipeline failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["chunks_per_second"] = figures["chunks"] / figures["ingest_seconds"]
    return figures


def _chart(results: dict[str, dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("ingest_seconds", "ingest wall time (s, lower is better)"),
        ("chunks_per_second", "chunks/s"),
        ("peak_rss_mb", "peak RSS while ingesting (MB)"),
        ("search_p95_ms", "warm search p95 (ms)"),
        ("ndcg@10", "nDCG@10"),
    ]
    names = list(results)
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    for axis, (key, label) in zip(axes, panels):
        values = [results[name][key] for name in names]
        bars = axis.bar(names, values, color=["#4c72b0", "#dd8452"])
        axis.set_title(label, fontsize=10)
        axis.bar_label(bars, labels=[f"{v:.3f}" if key == "ndcg@10" else f"{v:,.1f}" for v in values], fontsize=9)
        axis.tick_params(axis="x", labelsize=9)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


@app.command("compare")
def compare(
    data: Annotated[Path, typer.Option(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels.")] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="Folder for vs_langchain.json and vs_langchain.png.")] = REPO_ROOT
    / "bench"
    / "results",
    max_docs: Annotated[
        int | None, typer.Option(help="Index at most this many documents: the judged ones, then the rest in order.")
    ] = None,
) -> None:
    """Run both pipelines one after the other and compare them."""
    if not (data / "corpus.jsonl").is_file():
        raise typer.BadParameter(f"{data}: no corpus.jsonl (the default needs ../shared beside the repository)")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        if max_docs:
            data = _subset(data, max_docs, Path(scratch) / f"{data.name}-{max_docs}")
        results = {
            "LangChain": _run_pipeline("langchain", data, Path(scratch)),
            "ours": _run_pipeline("ours", data, Path(scratch)),
        }
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    ratios = {
        "ingest_speedup": results["LangChain"]["ingest_seconds"] / results["ours"]["ingest_seconds"],
        "ingest_cpu_ratio": results["LangChain"]["ingest_cpu_seconds"] / results["ours"]["ingest_cpu_seconds"],
        "chunks_per_second_ratio": results["ours"]["chunks_per_second"] / results["LangChain"]["chunks_per_second"],
        "ndcg@10_difference": results["ours"]["ndcg@10"] - results["LangChain"]["ndcg@10"],
    }
    report = {
        "data": str(data),
        "date": date.today().isoformat(),
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "results": results,
        "ratios": ratios,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "vs_langchain.json").write_text(json.dumps(report, indent=2))
    title = f"{data.name}: ours vs LangChain's tutorial pipeline, {machine}, {report['date']}"
    _chart(results, title, out / "vs_langchain.png")
    table = Table(title=f"{title} (load {load_before:.1f} before, {report['load_average_after']:.1f} after)")
    table.add_column("measure")
    for name in results:
        table.add_column(name, justify="right")
    rows = [
        ("ingest wall time (s)", "ingest_seconds", "{:.1f}"),
        ("ingest CPU time (s, all threads)", "ingest_cpu_seconds", "{:.1f}"),
        ("chunks", "chunks", "{:,}"),
        ("chunks/s", "chunks_per_second", "{:.1f}"),
        ("peak RSS while ingesting (MB)", "peak_rss_mb", "{:,.0f}"),
        ("warm search p50 (ms)", "search_p50_ms", "{:.1f}"),
        ("warm search p95 (ms)", "search_p95_ms", "{:.1f}"),
        ("nDCG@10", "ndcg@10", "{:.4f}"),
    ]
    for label, key, form in rows:
        table.add_row(label, *(form.format(results[name][key]) for name in results))
    dense = results["ours"]["dense_only"]
    table.add_row("ours, dense only: nDCG@10 / p95 ms", "", f"{dense['ndcg@10']:.4f} / {dense['search_p95_ms']:.1f}")
    console = Console()
    console.print(table)
    console.print(
        f"ingest {ratios['ingest_speedup']:.2f}x faster ({ratios['ingest_cpu_ratio']:.2f}x less CPU), "
        f"{ratios['chunks_per_second_ratio']:.2f}x the chunks/s, "
        f"nDCG@10 {ratios['ndcg@10_difference']:+.4f}; saved {out / 'vs_langchain.json'} and {out / 'vs_langchain.png'}"
    )


if __name__ == "__main__":
    app()
