"""Cold-start wall time of `rag status`, `rag search` and `rag ask` on the demo index, each in a fresh process.

    python bench/cold_start.py [--runs 5] [--embedder onnx-int8] [--out bench/results/cold_start.json]

Builds an index of docs/ (the demo corpus) in a temporary folder with the given embedder, then runs
each command ``runs`` times as a user would (``python -m rag.cli ...``) and reports the fastest and
the median wall time, the least CPU time (user + system) of a run, and the heaviest imports of one
run (``python -X importtime``). On a shared machine the wall time carries the other processes' load;
the CPU time of a process that runs on one thread is close to what its wall time would be idle. The ONNX
export is made before timing (its one-time cost is not a cold start). Nothing here asserts a speed;
on a shared machine read the minimum. ``hyperfine 'rag search "how do I add files"'`` measures the same.
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
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "status": ["status"],
    "search": ["search", "how do I add files"],
    "ask": ["ask", "How do I add files?"],
}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(arguments: list[str], index_dir: Path, *python_options: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *python_options, "-m", "rag.cli", *arguments, "--index", str(index_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=True,
    )
    return time.perf_counter() - started, result.stderr


def _heaviest_imports(importtime_log: str, count: int = 8) -> list[tuple[str, float]]:
    """Top-level packages by cumulative import time (ms) from ``-X importtime`` output."""
    totals: dict[str, float] = {}
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        top_level = name.strip() and not name.startswith("  ") and name.strip()[0].isalpha()
        if top_level and cumulative.strip().isdigit():
            top = name.strip().split(".")[0]
            totals[top] = max(totals.get(top, 0.0), int(cumulative) / 1000)
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)[:count]


def main(
    runs: Annotated[int, typer.Option(help="Fresh processes per command.")] = 5,
    embedder: Annotated[str, typer.Option(help="Embedder of the demo index.")] = "onnx-int8",
    out: Annotated[Path, typer.Option(help="Where to save the JSON.")] = REPO_ROOT / "bench" / "results" / "cold_start.json",
) -> None:
    from index.ingest import add_to_index

    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        index_dir = Path(scratch) / "demo"
        add_to_index(index_dir, [REPO_ROOT / "docs"], embedder_kind=embedder, show_progress=False)
        for name, arguments in COMMANDS.items():
            _run(arguments, index_dir)  # the page cache holds the files a user's second run finds there too
            seconds, cpu_seconds = [], []
            for _ in range(runs):
                cpu_before = _children_cpu_seconds()
                seconds.append(_run(arguments, index_dir)[0])
                cpu_seconds.append(_children_cpu_seconds() - cpu_before)
            imports = _heaviest_imports(_run(arguments, index_dir, "-X", "importtime")[1])
            results[name] = {
                "min_s": round(min(seconds), 3),
                "median_s": round(statistics.median(seconds), 3),
                "runs": [round(value, 3) for value in seconds],
                "min_cpu_s": round(min(cpu_seconds), 3),
                "heaviest_imports_ms": {package: round(ms, 1) for package, ms in imports},
            }
    load = os.getloadavg()[0]
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1min": load,
        "embedder": embedder,
        "commands": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"cold start on the demo index ({embedder}), {report['machine']}, load {load:.1f}, {report['date']}")
    for column in ("command", "min s", "median s", "min CPU s", "heaviest imports (ms)"):
        table.add_column(column)
    for name, figures in results.items():
        imports = ", ".join(f"{package} {ms:.0f}" for package, ms in list(figures["heaviest_imports_ms"].items())[:5])
        table.add_row(f"rag {name}", f"{figures['min_s']:.2f}", f"{figures['median_s']:.2f}", f"{figures['min_cpu_s']:.2f}", imports)
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
