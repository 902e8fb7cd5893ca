"""The int8 quality guard: retrieval metrics with each embedder, and across them, measured in one run.

    python -m evals.embedder_quality [evals/suites/scifact.toml evals/suites/squad_a.toml] [--out eval-out/embedders]

For each suite it builds (or reuses, cached like ``rag eval``) the index with ``onnx-int8`` and with
``torch``, and runs the suite's modes three ways: int8 index with int8 queries (the default), torch
with torch (the reference) and the torch index with int8 queries (an old index searched by the new
default). Prints each metric with its difference from the reference and saves JSON. The target is
a difference within the suite's tolerance (0.005) for nDCG@10 and MRR@10.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from evals.data import load_dataset
from evals.indexes import ensure_index
from evals.runner import corpus_id_function, run_retrieval_mode
from evals.suite import REPO_ROOT, load_suite
from rag.retrieval.retriever import Retriever

COMBINATIONS = (("torch", "torch"), ("onnx-int8", "onnx-int8"), ("torch", "onnx-int8"))
"""(index embedder, query embedder); the first is the reference."""
SHOWN = ("ndcg@10", "mrr@10", "recall@100", "latency_p95_ms")


def measure(suite_path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """metrics[combination][mode] for one suite, e.g. ``metrics["torch / onnx-int8"]["hybrid"]["ndcg@10"]``."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for index_kind, query_kind in COMBINATIONS:
        suite = load_suite(suite_path, embedder=index_kind)
        dataset = load_dataset(suite.dataset, corpus=suite.corpus, max_queries=suite.max_queries)
        index_dir = ensure_index(dataset.corpus, suite.index)
        retriever = Retriever.open(index_dir, embedder_kind=query_kind)
        corpus_id = corpus_id_function(dataset, suite.corpus_ids)
        results[f"{index_kind} / {query_kind}"] = {
            mode: run_retrieval_mode(dataset, retriever, mode, suite, corpus_id).metrics
            for mode in suite.retrieval.modes
        }
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.embedder_quality", description=__doc__)
    suites = [REPO_ROOT / "evals" / "suites" / name for name in ("scifact.toml", "squad_a.toml")]
    parser.add_argument("suites", nargs="*", type=Path, default=suites)
    parser.add_argument("--out", type=Path, default=Path("eval-out") / "embedders")
    arguments = parser.parse_args(argv)
    console = Console()
    report = {}
    for suite_path in arguments.suites:
        results = measure(suite_path)
        report[suite_path.stem] = results
        reference = results[" / ".join(COMBINATIONS[0])]
        table = Table(title=f"{suite_path.stem}: index embedder / query embedder (difference from torch / torch)")
        table.add_column("run")
        for metric in SHOWN:
            table.add_column(metric, justify="right")
        for combination, modes in results.items():
            for mode, metrics in modes.items():
                cells = []
                for metric in SHOWN:
                    value, base = metrics[metric], reference[mode][metric]
                    cells.append(f"{value:.4f} ({value - base:+.4f})" if "latency" not in metric else f"{value:.1f}")
                table.add_row(f"{combination}: {mode}", *cells)
        console.print(table)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "embedder_quality.json").write_text(json.dumps(report, indent=2))
    console.print(f"saved {arguments.out / 'embedder_quality.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
