"""Fuse the dense and BM25 rankings into one: z-scored scores, averaged with equal weights.

Each list's scores are standardised over its own candidates, ``z = (score - mean) / std``
(at least the top 100 chunks per retriever; more when a per-document search needs more), and a
chunk's fused score is the mean of its two z-scores. A chunk missing from one list gets that
list's lowest z-score: it was not among that retriever's candidates, so it is no better than the
worst one that was.

Why scores and not only ranks: reciprocal rank fusion (RRF) treats a retriever's top hit the same
whether it stands far above the rest or barely ahead, so a weak retriever drags down a confident
one. A z-score keeps that per-query confidence. On SQuAD, where a question usually shares rare
words with its paragraph, BM25's top hit stands a median 5.5 standard deviations above the mean of
its candidates (dense: 3.3), so BM25 decides there; where BM25's scores are flat, dense decides.
Min-max normalisation loses that signal (every top hit becomes 1.0), and weights fitted to one
dataset would not carry over to unseen corpora, so the two lists weigh the same and nothing is
tuned per dataset.

Measured with the packaged all-MiniLM-L6-v2 through ``Retriever.search(per_document=True, k=100)``
(best chunk per document), scored by ranx; ``bench/retrieval_table.py``, 2026-11-27, 2-core VM
shared with other jobs (latency in ms, hybrid includes embedding the query):

=====================  =======  =====  ======  ======  =====  ===========
SciFact, 300 claims    nDCG@10  R@10   R@100   MRR@10  R@1    p50 / p95
=====================  =======  =====  ======  ======  =====  ===========
dense                  0.6659   0.8116 0.9327  0.6220  0.5139 21.0 / 26.9
BM25                   0.6522   0.7872 0.9002  0.6173  0.5017  2.9 /  6.3
hybrid, RRF (k=60)     0.7099   0.8484 0.9543  0.6721  0.5447 19.0 / 26.3
hybrid, z-score        0.7211   0.8471 0.9543  0.6870  0.5665 19.0 / 27.2
=====================  =======  =====  ======  ======  =====  ===========

=====================  =======  =====  ======  ======  =====  ===========
SQuAD dev A, 5,397 q.  nDCG@10  R@10   R@100   MRR@10  R@1    p50 / p95
=====================  =======  =====  ======  ======  =====  ===========
dense                  0.7312   0.8581 0.9917  0.6905  0.6018 13.4 / 17.7
BM25                   0.8640   0.9579 0.9943  0.8334  0.7613  2.3 /  2.6
hybrid, RRF (k=60)     0.8588   0.9731 0.9987  0.8213  0.7287 12.8 / 17.3
hybrid, z-score        0.8951   0.9768 0.9987  0.8680  0.7997 13.8 / 18.4
=====================  =======  =====  ======  ======  =====  ===========

RRF falls below BM25 alone on SQuAD; z-score fusion beats the better single retriever on every
metric of both sets except SciFact R@10 (RRF 0.8484 vs 0.8471). Offline sweeps over the same
candidates (``bench/fusion_sweep.py``) found it insensitive to its settings: 50 to 300 candidates
per list move SQuAD MRR@10 within 0.865-0.868 and SciFact nDCG@10 within 0.721-0.726; giving a
missing chunk z = 0 or the minimum minus one instead changes either by < 0.005; a dense weight of
0.4-0.6 instead of 0.5 moves SciFact nDCG@10 by < 0.005. Min-max normalisation with equal weights
comes close (SQuAD MRR@10 0.866, SciFact nDCG@10 0.721); distribution-based score fusion
(mean +- 3 std, clipped) trails RRF on SQuAD (MRR@10 0.817).

The BM25 row is chunk-level BM25 over chunk texts alone, which lack the document title that the
embedded text carries; indexing BM25 over the same text as the model embeds (title or heading
plus chunk) measured BM25 0.6794 and hybrid 0.7323 nDCG@10 on SciFact (SQuAD: no change).

>>> fused = zscore_fusion([[("a", 0.9), ("b", 0.5), ("c", 0.4)], [("b", 12.0), ("d", 3.0), ("a", 2.5)]])
>>> [key for key, _ in fused]
['b', 'a', 'd', 'c']
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Literal, TypeVar

FusionMethod = Literal["zscore", "rrf"]
FUSION_METHODS: tuple[str, ...] = ("zscore", "rrf")
DEFAULT_FUSION: FusionMethod = "zscore"

RRF_K = 60
"""The constant of reciprocal rank fusion (Cormack et al., 2009); kept for comparison runs."""

_FLAT = 1e-9
"""A list whose scores spread less than this carries no preference: all its z-scores are 0."""

Key = TypeVar("Key", bound=Hashable)


def zscore_fusion(rankings: Sequence[Sequence[tuple[Key, float]]]) -> list[tuple[Key, float]]:
    """Mean of each key's per-list z-scores (a key missing from a list gets that list's minimum), best first.

    ``rankings`` are lists of ``(key, score)`` with higher scores better, on any scale. Ties keep
    the order in which keys first appear (dense before BM25 when called by :func:`fuse`).
    """
    standardised = [_zscores(ranking) for ranking in rankings]
    keys = dict.fromkeys(key for ranking in rankings for key, _ in ranking)
    count = len(rankings) or 1
    fused = {key: sum(scores.get(key, missing) for scores, missing in standardised) / count for key in keys}
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def _zscores(ranking: Sequence[tuple[Key, float]]) -> tuple[dict[Key, float], float]:
    """Each key's z-score within ``ranking`` and the score a key missing from it gets."""
    if not ranking:
        return {}, 0.0
    scores = [score for _, score in ranking]
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((score - mean) ** 2 for score in scores) / len(scores))
    if spread < _FLAT:
        return {key: 0.0 for key, _ in ranking}, 0.0
    standardised = {key: (score - mean) / spread for key, score in ranking}
    return standardised, min(standardised.values())


def rrf_fusion(rankings: Sequence[Sequence[tuple[Key, float]]], k: int = RRF_K) -> list[tuple[Key, float]]:
    """Reciprocal rank fusion: each list adds ``1 / (k + rank)`` to a key's score; best first.

    >>> [key for key, _ in rrf_fusion([[("a", 0.9), ("b", 0.5)], [("b", 7.0), ("c", 1.0)]])]
    ['b', 'a', 'c']
    """
    fused: dict[Key, float] = {}
    for ranking in rankings:
        for rank, (key, _) in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: item[1], reverse=True)


def fuse(
    dense: list[tuple[int, float]],
    lexical: list[tuple[int, float]],
    method: FusionMethod = DEFAULT_FUSION,
) -> list[tuple[int, float]]:
    """One ranking of the chunk rows of both lists, best first, scored by ``method`` (z-score by default).

    Works on row ids, so only the chunks that make the final ranking are read from the store.
    Raises ``ValueError`` for an unknown method.

    >>> [row for row, _ in fuse([(1, 0.8), (2, 0.6), (3, 0.1)], [(2, 7.0), (4, 3.0)])]
    [2, 1, 4, 3]
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {', '.join(FUSION_METHODS)}; got {method!r}")
    lexical = list(lexical)
    if len(lexical) < len(dense):
        # BM25 ran out of matches: every other chunk shares no word with the query and scores exactly 0.
        # Counting those zeros keeps a lone match from standardising to 0, the same as no match at all.
        matched = {row for row, _ in lexical}
        lexical += [(row, 0.0) for row, _ in dense if row not in matched]
    return zscore_fusion([dense, lexical]) if method == "zscore" else rrf_fusion([dense, lexical])
