"""Check our dense pipeline against the published all-MiniLM-L6-v2 SciFact number (MTEB 0.645 nDCG@10).

MTEB embeds each whole document (title and text, truncated to the model's 256-token window) and
ranks by cosine, with no chunking; this script does the same with our Embedder, so a gap
between this number and 0.645 would point at the embedding, not at chunking.

    PYTHONPATH=. python bench/dense_whole_docs.py ../shared/evaldata/scifact
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from ranx import Qrels, Run, evaluate
from rich.progress import track

from evals.data import load_dataset
from index.embedding import load_embedder


def main(data_dir: Path) -> None:
    dataset = load_dataset(data_dir)
    with open(dataset.corpus, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    ids = [str(r.get("_id", r.get("id"))) for r in records]
    # MTEB joins title and text with a space.
    texts = [f"{r.get('title', '')} {r['text']}".strip() for r in records]
    embedder = load_embedder()
    started = time.perf_counter()
    vectors = np.vstack([embedder.embed(texts[i : i + 64]) for i in track(range(0, len(texts), 64), "embedding")])
    print(f"embedded {len(texts)} documents in {time.perf_counter() - started:.0f} s")
    queries = embedder.embed([q.text for q in dataset.queries])
    scores = queries @ vectors.T
    run = {}
    for query, row in zip(dataset.queries, scores):
        top = np.argsort(-row)[:100]
        run[query.id] = {ids[i]: float(row[i]) for i in top}
    metrics = evaluate(Qrels(dataset.qrels), Run(run), ["ndcg@10", "recall@10", "recall@100", "mrr@10"])
    print({name: round(float(value), 4) for name, value in metrics.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]))
