"""Compare fusion methods offline on candidate lists dumped by ``bench/fusion_candidates.py``.

Every method sees the same dense and BM25 lists; documents are ranked by their best chunk
(``per_document``). Scores come from ranx. Prints one row per method.

    python bench/fusion_sweep.py bench/results/scifact-candidates.npz ../shared/evaldata/scifact
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ranx import Qrels, Run, evaluate

from evals.data import read_qrels
from rag import fusion

METRICS = ["ndcg@10", "recall@10", "recall@100", "mrr@10", "recall@1"]
Ranked = list[tuple[str, float]]


def load(path: Path) -> tuple[list[str], list[Ranked], list[Ranked], list[tuple[list, list]], dict[int, str]]:
    data = np.load(path, allow_pickle=False)
    doc_of = dict(zip(data["chunk_rows"].tolist(), data["chunk_docs"].tolist()))
    dense, lexical, chunk_level = [], [], []
    for position in range(len(data["query_ids"])):
        dense_chunks = [(int(r), float(s)) for r, s in zip(data["dense_rows"][position], data["dense_scores"][position]) if r >= 0]
        bm25_chunks = [(int(r), float(s)) for r, s in zip(data["bm25_rows"][position], data["bm25_scores"][position]) if r >= 0]
        dense.append(best_per_doc(dense_chunks, doc_of))
        lexical.append(best_per_doc(bm25_chunks, doc_of))
        chunk_level.append((dense_chunks, bm25_chunks))
    return data["query_ids"].tolist(), dense, lexical, chunk_level, doc_of


def best_per_doc(chunks: list[tuple[int, float]], doc_of: dict[int, str]) -> Ranked:
    seen: dict[str, float] = {}
    for row, score in chunks:
        seen.setdefault(doc_of[row], score)
    return list(seen.items())


def score(query_ids: list[str], rankings: list[Ranked], qrels: dict, depth: int = 100) -> dict[str, float]:
    run = Run({qid: {doc: float(depth - i) for i, (doc, _) in enumerate(ranking[:depth])} for qid, ranking in zip(query_ids, rankings)})
    return {k: float(v) for k, v in evaluate(Qrels(qrels), run, METRICS, make_comparable=True).items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("candidates", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--depth", type=int, default=100, help="candidates per list used for fusion")
    parser.add_argument("--only", default="", help="comma-separated method names to run")
    arguments = parser.parse_args()
    query_ids, dense, lexical, chunk_level, doc_of = load(arguments.candidates)
    qrels = read_qrels(arguments.data / "qrels.tsv")
    qrels = {q: d for q, d in qrels.items() if q in set(query_ids)}
    depth = arguments.depth

    def doc_level(method: Callable[[Ranked, Ranked], Ranked]) -> list[Ranked]:
        return [method(d[:depth], l[:depth]) for d, l in zip(dense, lexical)]

    def chunk_then_doc(method: Callable) -> list[Ranked]:
        out = []
        for dense_chunks, bm25_chunks in chunk_level:
            fused = method(dense_chunks[: 2 * depth], bm25_chunks[: 2 * depth])
            out.append(best_per_doc(fused, doc_of))
        return out

    methods: dict[str, Callable[[], list[Ranked]]] = {
        "dense": lambda: dense,
        "bm25": lambda: lexical,
        "rrf60 chunk": lambda: chunk_then_doc(lambda d, l: fusion.fuse_scores([d, l], method="rrf")),
        "rrf60 doc": lambda: doc_level(lambda d, l: fusion.fuse_scores([d, l], method="rrf")),
    }
    for method in ("minmax", "zscore", "dbsf"):
        for weight in (0.3, 0.4, 0.5, 0.6, 0.7):
            methods[f"{method} w_dense={weight} doc"] = (
                lambda m=method, w=weight: doc_level(lambda d, l: fusion.fuse_scores([d, l], weights=[w, 1 - w], method=m))
            )
        methods[f"{method} w_dense=0.5 chunk"] = (
            lambda m=method: chunk_then_doc(lambda d, l: fusion.fuse_scores([d, l], method=m))
        )
    only = [name.strip() for name in arguments.only.split(",") if name.strip()]
    print(f"{'method':34s} " + " ".join(f"{m:>10s}" for m in METRICS))
    for name, method in methods.items():
        if only and not any(o in name for o in only):
            continue
        metrics = score(query_ids, method(), qrels)
        print(f"{name:34s} " + " ".join(f"{metrics[m]:10.4f}" for m in METRICS))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
