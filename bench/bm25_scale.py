"""BM25 alone at scale, in minutes: real SciFact and SQuAD text cut in 80-word pieces, then tagged copies.

    python bench/bm25_scale.py [--sizes 100000,1000000] [--queries 600] [--out DIR]

``bench/scale.py`` measures the whole index (vectors, SQLite, hybrid search) but must build its stores
first, which takes an hour at a million chunks; this script builds only the BM25 file, the way
``Bm25Index.build`` does from a store, and times ``Bm25Index.search`` (k=100, the depth hybrid search
asks for, and k=10) on the same real queries (SciFact claims and SQuAD questions in turn). Copies are
``[synthetic copy N] `` plus a real piece, as in ``bench/scale.py``; a copy's terms are its original's
(tokenised once) plus the tag's, so building a million takes about two minutes. Prints CPU and wall
p50/p95 and saves ``DIR/bm25_scale.json``; nothing here asserts a speed. Run it from another checkout
to compare two versions side by side (the built files are cached per size in ``--work``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
EVALDATA = REPO_ROOT.parent / "shared" / "evaldata"
CORPORA = [EVALDATA / "scifact" / "corpus.jsonl", EVALDATA / "squad_dev_a" / "corpus.jsonl"]
QUERY_FILES = [EVALDATA / "scifact" / "queries.jsonl", EVALDATA / "squad_dev_a" / "queries.jsonl"]
WORDS_A_PIECE = 80


def real_pieces() -> list[str]:
    pieces = []
    for path in CORPORA:
        for line in path.open(encoding="utf-8"):
            record = json.loads(line)
            words = f"{record.get('title', '')} {record['text']}".split()
            pieces.extend(" ".join(words[start : start + WORDS_A_PIECE]) for start in range(0, len(words), WORDS_A_PIECE))
    return pieces


def build(size: int, folder: Path, pieces: list[str]) -> float:
    """Build and save a BM25 index of ``size`` documents into ``folder``; returns the seconds it took."""
    import index.bm25 as bm25_module

    real_terms = [bm25_module.tokenize(text) for text in pieces]
    tokenize = bm25_module.tokenize

    def terms_of(text: str, language: str = "english") -> list[str]:
        number = int(text)  # the "text" is the document's number: its terms come from its original
        original = real_terms[number % len(pieces)]
        return original if number < len(pieces) else [*tokenize(f"[synthetic copy {number}]"), *original]

    def batches() -> Any:
        for start in range(0, size, 50_000):
            numbers = list(range(start, min(start + 50_000, size)))
            yield numbers, [str(number) for number in numbers]

    started = time.perf_counter()
    bm25_module.tokenize = terms_of
    try:
        index = bm25_module.Bm25Index.build(batches())
    finally:
        bm25_module.tokenize = tokenize
    index.save(folder)
    return time.perf_counter() - started


def read_queries(limit: int) -> list[str]:
    per_file = [[json.loads(line)["text"] for line in path.open(encoding="utf-8")] for path in QUERY_FILES]
    queries = [text for pair in zip(*per_file) for text in pair]
    return queries[:limit]


def time_queries(folder: Path, queries: list[str], k: int) -> dict[str, float]:
    from index.bm25 import Bm25Index

    index = Bm25Index.open(folder)
    for query in queries[:20]:  # warm-up: the mapped pages of frequent terms
        index.search(query, k)
    wall, cpu = [], []
    for query in queries:
        started, cpu_started = time.perf_counter(), time.thread_time()
        index.search(query, k)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - cpu_started) * 1000)
    wall_cuts, cpu_cuts = statistics.quantiles(wall, n=100), statistics.quantiles(cpu, n=100)
    return {"p50_ms": wall_cuts[49], "p95_ms": wall_cuts[94], "cpu_p50_ms": cpu_cuts[49], "cpu_p95_ms": cpu_cuts[94]}


def main(
    sizes: Annotated[str, typer.Option(help="Comma-separated document counts.")] = "100000,1000000",
    queries: Annotated[int, typer.Option(help="Real queries (SciFact and SQuAD in turn).")] = 600,
    out: Annotated[Path, typer.Option(help="Where bm25_scale.json goes.")] = REPO_ROOT / "bench" / "results",
    work: Annotated[
        Path | None, typer.Option(help="Where the built indexes are kept (default ~/.cache/rag-assistant/bm25-bench).")
    ] = None,
) -> None:
    """Build (once) and search BM25 indexes of each size; print the table and save JSON."""
    work = work or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-assistant" / "bm25-bench"
    pieces = real_pieces()
    query_texts = read_queries(queries)
    rows = []
    for size in sorted(int(value) for value in sizes.split(",")):
        folder = work / str(size)
        build_s = None
        if not (folder / "bm25.safetensors").is_file():
            build_s = build(size, folder, pieces)
        for k in (100, 10):
            rows.append({
                "size": size, "real_pieces": min(size, len(pieces)), "k": k, "build_s": build_s,
                "load_average": os.getloadavg()[0], **time_queries(folder, query_texts, k),
            })
    context = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "queries": len(query_texts),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bm25_scale.json").write_text(json.dumps([{**row, **context} for row in rows], indent=2))
    table = Table(title=f"BM25 search, {context['machine']}, {context['date']} (real pieces + tagged copies)")
    for column in ("documents", "k", "wall p50 / p95 ms", "CPU p50 / p95 ms", "load"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            f"{row['size']:,}", str(row["k"]), f"{row['p50_ms']:.1f} / {row['p95_ms']:.1f}",
            f"{row['cpu_p50_ms']:.1f} / {row['cpu_p95_ms']:.1f}", f"{row['load_average']:.1f}",
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    typer.run(main)
