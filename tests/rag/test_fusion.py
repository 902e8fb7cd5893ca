"""Score fusion: z-scores let a confident retriever win over a hesitant one; RRF is kept for comparison."""

from __future__ import annotations

import pytest

from rag.retrieval.fusion import fuse, rrf_fusion, zscore_fusion


def _keys(fused) -> list[str]:
    return [key for key, _ in fused]


def test_a_standout_hit_of_one_retriever_beats_the_other_retrievers_flat_ranking() -> None:
    # Dense barely prefers "x"; BM25's top hit "answer" stands far above its other candidates
    # (a rare word shared with the question), so it must come first although dense ranks it low.
    dense = [("x", 0.52), ("y", 0.51), ("z", 0.50), ("answer", 0.49), ("w", 0.48)]
    lexical = [("answer", 25.0), ("x", 6.0), ("y", 5.5), ("z", 5.0), ("w", 4.5)]
    assert _keys(zscore_fusion([dense, lexical]))[0] == "answer"
    assert _keys(rrf_fusion([dense, lexical]))[0] == "x", "rank fusion cannot see the standout"


def test_scores_on_any_scale_fuse_alike() -> None:
    dense = [("a", 0.9), ("b", 0.7), ("c", 0.2)]
    lexical = [("c", 14.0), ("a", 9.0), ("d", 1.0)]
    rescaled = [(key, 100 * score - 7) for key, score in lexical]
    assert _keys(zscore_fusion([dense, lexical])) == _keys(zscore_fusion([dense, rescaled]))


def test_a_key_missing_from_a_list_counts_as_that_lists_worst_candidate() -> None:
    fused = dict(zscore_fusion([[("a", 3.0), ("b", 1.0)], [("a", 2.0), ("c", 1.0)]]))
    assert fused["b"] == pytest.approx((-1.0 + -1.0) / 2)  # b: z -1 in list one, absent from list two
    assert fused["c"] == pytest.approx(fused["b"])
    assert fused["a"] == pytest.approx(1.0)


def test_a_list_with_equal_scores_expresses_no_preference() -> None:
    flat = [("a", 1.0), ("b", 1.0), ("c", 1.0)]
    decisive = [("c", 9.0), ("b", 5.0), ("a", 1.0)]
    assert _keys(zscore_fusion([flat, decisive])) == ["c", "b", "a"]


def test_empty_lists_fuse_to_the_other_list_or_nothing() -> None:
    assert zscore_fusion([[], []]) == []
    assert _keys(zscore_fusion([[], [("a", 2.0), ("b", 1.0)]])) == ["a", "b"]


def test_reciprocal_rank_fusion_adds_one_over_k_plus_rank() -> None:
    fused = dict(rrf_fusion([[("a", 0.0), ("b", 0.0)], [("b", 0.0)]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)


def test_fuse_returns_each_row_once_with_its_fused_score() -> None:
    dense = [(1, 0.8), (2, 0.6), (3, 0.1)]
    lexical = [(2, 7.0), (4, 3.0)]
    fused = fuse(dense, lexical)
    assert sorted(row for row, _ in fused) == [1, 2, 3, 4]
    assert fused[0][0] == 2
    assert [score for _, score in fused] == sorted((score for _, score in fused), reverse=True)
    assert fuse(dense, lexical, "rrf")[0][0] == 2


def test_fuse_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="fusion method must be one of zscore, rrf; got 'max'"):
        fuse([], [], "max")  # type: ignore[arg-type]


def test_a_lone_bm25_match_lifts_its_chunk_in_a_small_collection():
    """Regression: with one BM25 match its z-score was 0, the same as chunks that matched nothing."""
    dense = [(1, 0.40), (2, 0.36), (3, 0.20), (4, 0.10)]
    lexical = [(2, 3.1)]
    assert fuse(dense, lexical)[0][0] == 2
