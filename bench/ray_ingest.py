"""Ray ingestion beside the single-process path: `rag add CORPUS` against `rag add CORPUS --ray`, one run.

    python bench/ray_ingest.py [CORPUS] [--repeats N] [--out bench/figures/ray_ingest.json]

CORPUS defaults to ../shared/corpus. Each run is a real `rag add` into a new index, in a subprocess
(`--ray` starts and stops its own local Ray, bounded to this machine's cores), the two kinds
alternating. Peak memory is that of the whole process tree (the CLI, and with Ray its GCS, raylet
and actor processes), sampled every 0.2 s: the sum of PSS, so the pages the processes share (the
object store, libraries) count once. CPU seconds are summed over the same processes, each as last
sampled (a process can lose its last 0.2 s). The machine's load average is recorded before each run.
Prints a table naming the machine and date and saves the figures as JSON; nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus"
SAMPLE_SECONDS = 0.2


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process under it, from /proc.

    Why by hand: psutil is not among our dependencies, and this is ten lines of reading /proc.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _sample_tree(pid: int, cpu_seconds: dict[int, float]) -> tuple[float, float]:
    """(sum of PSS, sum of RSS) of the process tree under ``pid``, in MB; records each process's CPU
    seconds so far in ``cpu_seconds`` (the last sample before a process ends is what it is counted for)."""
    pss = rss = 0
    for process in _descendants(pid):
        try:
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text()
            stat = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone, or not ours to read
        pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.MULTILINE).group(1))  # type: ignore[union-attr]
        rss += int(re.search(r"^Rss:\s+(\d+)", rollup, re.MULTILINE).group(1))  # type: ignore[union-attr]
        # utime and stime, fields 14 and 15 of /proc/PID/stat (11 and 12 after the command name).
        cpu_seconds[process] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return pss / 1024, rss / 1024


def _run(corpus: Path, index_dir: Path, ray: bool) -> dict[str, float | str]:
    command = [sys.executable, "-m", "rag.cli", "add", str(corpus), "--index", str(index_dir), "--quiet"]
    if ray:
        command.append("--ray")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.PIPE, text=True
    )
    peaks = [0.0, 0.0]
    cpu_seconds: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pss, rss = _sample_tree(process.pid, cpu_seconds)
            peaks[0], peaks[1] = max(peaks[0], pss), max(peaks[1], rss)
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    chunks = _chunk_count(index_dir)
    return {
        "mode": "--ray (local)" if ray else "single process",
        "seconds": round(seconds, 1),
        "chunks": chunks,
        "chunks_per_second": round(chunks / seconds, 1),
        "cpu_seconds": round(sum(cpu_seconds.values()), 1),
        "peak_pss_mb": round(peaks[0]),
        "peak_rss_sum_mb": round(peaks[1]),
        "load_before": round(load, 1),
        "summary": stderr.strip().splitlines()[-1],
    }


def _chunk_count(index_dir: Path) -> int:
    with sqlite3.connect(index_dir / "store.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])


def _chunks(index_dir: Path) -> dict[str, bytes]:
    with sqlite3.connect(index_dir / "store.sqlite") as db:
        return dict(db.execute("SELECT id, vector FROM chunks"))


def main(
    corpus: Annotated[Path, typer.Argument(help="A file or folder to ingest.")] = DEFAULT_CORPUS,
    repeats: Annotated[int, typer.Option(help="Runs of each kind, alternating.", min=1)] = 1,
    out: Annotated[Path, typer.Option(help="Where to save the JSON.")] = REPO_ROOT
    / "bench"
    / "figures"
    / "ray_ingest.json",
) -> None:
    if not corpus.exists():
        raise typer.BadParameter(f"{corpus}: not found (the default needs ../shared beside the repository)")
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(repeats):
            indexes = {}
            for ray in (False, True):
                indexes[ray] = Path(scratch) / f"{'ray' if ray else 'single'}-{repeat}"
                runs.append(_run(corpus, indexes[ray], ray))
            same_chunk_ids = _chunks(indexes[False]).keys() == _chunks(indexes[True]).keys()
    result = {
        "corpus": str(corpus),
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "same_chunk_ids": same_chunk_ids,
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"rag add {corpus.name}: single process vs --ray, {result['machine']}, {result['date']}")
    for column in ("mode", "seconds", "chunks", "chunks/s", "CPU s", "peak PSS MB", "peak RSS sum MB", "load before"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for run in runs:
        table.add_row(
            *(str(run[key]) for key in ("mode", "seconds", "chunks", "chunks_per_second", "cpu_seconds", "peak_pss_mb")),
            str(run["peak_rss_sum_mb"]),
            str(run["load_before"]),
        )
    Console().print(table)
    print(f"same chunk ids: {same_chunk_ids}; saved {out}")


if __name__ == "__main__":
    typer.run(main)
