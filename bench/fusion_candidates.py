"""Dump each query's dense and BM25 candidate lists (chunk rows and scores) once, for offline fusion studies.

Fusion methods are then compared by ``bench/fusion_sweep.py`` on these lists without re-running
either retriever, so a sweep over many settings costs seconds, not an embedding pass each.
Output: one ``.npz`` (plain arrays, no pickle) per dataset.

    python bench/fusion_candidates.py --index /tmp/rag-cache/scifact \
        --data ../shared/evaldata/scifact --out bench/results/scifact-candidates.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.progress import track

from evals.data import load_dataset
from rag.retrieval.retriever import Retriever


def dump(index_dir: Path, data_dir: Path, out: Path, depth: int) -> None:
    """Write rows/scores arrays [queries, depth] for dense and BM25, plus the row -> document id map."""
    retriever = Retriever.open(index_dir)
    store = retriever.store
    dataset = load_dataset(data_dir)
    texts = [query.text for query in dataset.queries]
    started = time.perf_counter()
    vectors = retriever.embedder.embed(texts)
    print(f"embedded {len(texts)} queries in {time.perf_counter() - started:.1f} s")
    dense_rows = np.full((len(texts), depth), -1, dtype=np.int64)
    dense_scores = np.zeros((len(texts), depth), dtype=np.float32)
    bm25_rows = np.full((len(texts), depth), -1, dtype=np.int64)
    bm25_scores = np.zeros((len(texts), depth), dtype=np.float32)
    for position in track(range(len(texts)), description="searching"):
        dense_hits = store.dense_hits(vectors[position], depth)
        dense_rows[position, : len(dense_hits)] = [row for row, _ in dense_hits]
        dense_scores[position, : len(dense_hits)] = [score for _, score in dense_hits]
        hits = store.bm25_hits(texts[position], depth)
        bm25_rows[position, : len(hits)] = [row for row, _ in hits]
        bm25_scores[position, : len(hits)] = [score for _, score in hits]
    row_docs = dict(store._db.execute("SELECT rowid, document_id FROM chunks"))
    rows = np.array(sorted(row_docs), dtype=np.int64)
    np.savez_compressed(
        out,
        query_ids=np.array([query.id for query in dataset.queries]),
        dense_rows=dense_rows,
        dense_scores=dense_scores,
        bm25_rows=bm25_rows,
        bm25_scores=bm25_scores,
        chunk_rows=rows,
        chunk_docs=np.array([row_docs[row] for row in rows]),
    )
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=300)
    arguments = parser.parse_args()
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    dump(arguments.index, arguments.data, arguments.out, arguments.depth)


if __name__ == "__main__":
    main()
