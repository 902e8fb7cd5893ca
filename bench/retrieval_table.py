"""The retrieval comparison table: dense, BM25, hybrid with RRF and hybrid with z-score fusion, through
the real ``Retriever.search`` (latency included), scored by ranx via the eval runner.

    PYTHONPATH=. python bench/retrieval_table.py evals/suites/scifact.toml [--data DIR]

Uses the suite's cached evaluation index (built first if missing). Prints a Markdown table naming
the machine and the date; ``rag eval`` gives the same numbers for the modes it knows.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from evals.data import load_dataset
from evals.environment import environment_info
from evals.indexes import ensure_index
from evals.runner import corpus_id_function, run_retrieval_mode
from evals.suite import load_suite
from rag.retrieval.retriever import Retriever

COLUMNS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "recall@1", "latency_p50_ms", "latency_p95_ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--data", type=Path)
    arguments = parser.parse_args()
    suite = load_suite(arguments.suite, data=arguments.data)
    dataset = load_dataset(suite.dataset, corpus=suite.corpus, max_queries=suite.max_queries)
    index_dir = ensure_index(dataset.corpus, suite.index)
    corpus_id = corpus_id_function(dataset, suite.corpus_ids)
    zscore = Retriever.open(index_dir, fusion="zscore")
    rrf = Retriever(zscore.store, zscore.embedder, fusion="rrf")
    rows = []
    for label, retriever, mode in (
        ("dense", zscore, "dense"),
        ("bm25", zscore, "bm25"),
        ("hybrid, RRF k=60", rrf, "hybrid"),
        ("hybrid, z-score (default)", zscore, "hybrid"),
    ):
        result = run_retrieval_mode(dataset, retriever, mode, suite, corpus_id)
        rows.append((label, result.metrics))
    machine = environment_info()
    print(f"{suite.name}: {len(dataset.queries)} queries, per_document={suite.retrieval.per_document}, "
          f"{date.today()}, {machine['processor']} ({machine['cpu_count']} CPUs)\n")
    print("| run | nDCG@10 | R@10 | R@100 | MRR@10 | R@1 | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, metrics in rows:
        values = [f"{metrics[c]:.1f}" if c.startswith("latency") else f"{metrics[c]:.4f}" for c in COLUMNS]
        print(f"| {label} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
