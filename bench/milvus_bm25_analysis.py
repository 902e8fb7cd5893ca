"""What feeding Milvus our own BM25 analysis is worth: SciFact BM25 with Milvus Lite's own analyzer against ours.

    python bench/milvus_bm25_analysis.py [--suite evals/suites/scifact.toml]

The Milvus store writes ``bm25_text`` as our tokenizer analyses a chunk (Lucene's stop words out,
Snowball stems) and analyses queries the same way, so Milvus's standard analyzer only splits on
spaces. This run instead gives Milvus Lite the raw text (title or heading, then the chunk) and the raw
query, so its standard analyzer (lower-case ``\\w+`` words, no stop words, no stemming: what Lite
3.2.2 has) decides the terms. The suite's cached folder index is copied into a temporary Lite file
(nothing embedded), and the suite's BM25 run is scored for both; prints nDCG@10 and the other metrics
and saves JSON to bench/figures/milvus_bm25_analysis.json.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(
    suite_path: Annotated[Path, typer.Option("--suite")] = REPO_ROOT / "evals" / "suites" / "scifact.toml",
    out: Annotated[Path, typer.Option()] = REPO_ROOT / "bench" / "figures" / "milvus_bm25_analysis.json",
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from evals.data import load_dataset
    from evals.indexes import ensure_index
    from evals.runner import corpus_id_function, run_retrieval_mode
    from evals.suite import load_suite
    from index import milvus_store
    from index.stores import copy_store, create_store, open_store
    from rag import Retriever

    suite = load_suite(suite_path)
    dataset = load_dataset(suite.dataset, corpus=suite.corpus, max_queries=suite.max_queries)
    corpus_id = corpus_id_function(dataset, suite.corpus_ids)
    results = {}
    ours = Retriever.open(ensure_index(dataset.corpus, suite.index, show_progress=False))
    results["ours (stems, Lucene stop words), in the folder"] = run_retrieval_mode(
        dataset, ours, "bm25", suite, corpus_id, show_progress=False
    ).metrics
    workdir = Path(tempfile.mkdtemp(prefix="milvus-bm25-"))
    # Why a patch and not an option: the store deliberately has one analysis; this run measures the other.
    milvus_store.tokenize = lambda text, language="english": [text] if text.strip() else []
    try:
        target = create_store(f"milvus://{workdir / 'raw.db'}", ours.store.settings)
        copy_store(ours.store, target)
        target.close()
        raw = Retriever(open_store(f"milvus://{workdir / 'raw.db'}"), ours.embedder)
        results["Milvus Lite standard analyzer (lower-case words, no stop words, no stems)"] = run_retrieval_mode(
            dataset, raw, "bm25", suite, corpus_id, show_progress=False
        ).metrics
        raw.store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for name, metrics in results.items():
        print(f"{name}: " + ", ".join(f"{metric} {value:.4f}" for metric, value in metrics.items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"date": str(date.today()), "suite": suite.name, "bm25": results}, indent=1) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    typer.run(main)
