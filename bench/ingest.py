"""Ingestion benchmark: time and memory of `rag add` on a corpus, then of an unchanged re-add.

    python bench/ingest.py [CORPUS] [--out bench/results/ingest.json]

CORPUS defaults to ../shared/evaldata/scifact/corpus.jsonl. Each run is a real `rag add` in a
subprocess, so peak memory is the whole process's. Prints a table naming the machine and date and
saves the figures as JSON; nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "evaldata" / "scifact" / "corpus.jsonl"


def _timed_add(corpus: Path, index_dir: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rag.cli", "add", str(corpus), "--index", str(index_dir), "--quiet"],
        check=True,
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "peak_rss_mb": max(peak_kib, before) / 1024}


def _chunk_count(index_dir: Path) -> int:
    with sqlite3.connect(index_dir / "store.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])


def main(
    corpus: Annotated[Path, typer.Argument(help="A file or folder to ingest.")] = DEFAULT_CORPUS,
    out: Annotated[Path, typer.Option(help="Where to save the JSON.")] = REPO_ROOT / "bench" / "results" / "ingest.json",
) -> None:
    if not corpus.exists():
        raise typer.BadParameter(f"{corpus}: not found (the default needs ../shared beside the repository)")
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(scratch) / "index"
        first = _timed_add(corpus, index_dir)
        chunks = _chunk_count(index_dir)
        size_mb = sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file()) / 1e6
        again = _timed_add(corpus, index_dir)
    result = {
        "corpus": str(corpus),
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "chunks": chunks,
        "first_add_seconds": round(first["seconds"], 1),
        "chunks_per_second": round(chunks / first["seconds"], 1),
        "peak_rss_mb": round(first["peak_rss_mb"]),
        "index_size_mb": round(size_mb, 1),
        "unchanged_readd_seconds": round(again["seconds"], 1),
        "readd_fraction_of_first": round(again["seconds"] / first["seconds"], 3),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table = Table(title=f"rag add: {corpus.name} on {result['machine']}, {result['date']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key not in ("corpus", "date", "machine"):
            table.add_row(key.replace("_", " "), str(value))
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
