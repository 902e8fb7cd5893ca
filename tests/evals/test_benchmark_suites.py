"""The shipped benchmark suites against their baselines and the issue's targets (slow: real model, real corpora).

The evaluation index is cached (``$RAG_EVAL_CACHE`` or ``~/.cache/rag-assistant/eval-indexes``): the
first run embeds the corpus (SciFact: about 16k chunks, 10-25 minutes on 2 cores), later runs reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from evals.cli import eval_command
from evals.suite import REPO_ROOT, load_suite

SUITES = REPO_ROOT / "evals" / "suites"
BASELINES = REPO_ROOT / "evals" / "baselines"


def _run_suite_against_baseline(name: str, out_dir: Path) -> dict[str, dict[str, float]]:
    suite = load_suite(SUITES / f"{name}.toml")
    for folder in (suite.dataset, suite.corpus, *suite.extra_corpora):
        if folder is not None and not folder.exists():
            pytest.skip(f"{folder} not found: this test needs the ../shared data beside the repository")
    app = typer.Typer()
    app.command()(eval_command)
    result = CliRunner().invoke(
        app, [str(SUITES / f"{name}.toml"), "--baseline", str(BASELINES / f"{name}.json"), "--out", str(out_dir), "-q"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out_dir / "report.json").read_text())
    return {run["name"]: run["metrics"] for run in report["runs"]}


@pytest.mark.benchmark
def test_scifact_meets_its_baseline_and_targets(tmp_path: Path) -> None:
    metrics = _run_suite_against_baseline("scifact", tmp_path)
    # Dense, best chunk per document, lands a little above MTEB's whole-document 0.645 because chunks
    # are not truncated at 256 tokens (bench/dense_whole_docs.py reproduces 0.6451 without chunking).
    # BM25 over title-prefixed chunks lands within 0.01 of 0.68 (Anserini 0.679).
    assert metrics["dense"]["ndcg@10"] == pytest.approx(0.645, abs=0.02)
    assert metrics["bm25"]["ndcg@10"] == pytest.approx(0.68, abs=0.01)
    assert metrics["hybrid"]["ndcg@10"] >= 0.72
    for metric in ("ndcg@10", "recall@100", "mrr@10", "recall@1"):
        assert metrics["hybrid"][metric] > max(metrics["dense"][metric], metrics["bm25"][metric]), metric


@pytest.mark.benchmark
@pytest.mark.timeout(1800)  # 10 minutes at load 9 here (Milvus Lite is a pure-Python engine): room for a busier CI
def test_scifact_on_milvus_lite_is_within_a_hundredth_of_the_folder(tmp_path: Path) -> None:
    """The scifact suite's index copied into Milvus Lite (same vectors, nothing re-embedded) and searched there:
    nDCG@10 of each mode within 0.01 of the folder's baseline (issue 15)."""
    pytest.importorskip("pymilvus", reason='needs the milvus extra: pip install -e ".[milvus]"')
    metrics = _run_suite_against_baseline("scifact_milvus", tmp_path)
    folder = {run["name"]: run["metrics"] for run in json.loads((BASELINES / "scifact.json").read_text())["runs"]}
    for mode in ("dense", "bm25", "hybrid"):
        assert metrics[mode]["ndcg@10"] == pytest.approx(folder[mode]["ndcg@10"], abs=0.01), mode


@pytest.mark.benchmark
def test_squad_a_hybrid_beats_the_better_single_retriever(tmp_path: Path) -> None:
    metrics = _run_suite_against_baseline("squad_a", tmp_path)
    for metric in ("mrr@10", "recall@1", "ndcg@10", "recall@10"):
        assert metrics["hybrid"][metric] > max(metrics["dense"][metric], metrics["bm25"][metric]), metric


@pytest.mark.benchmark
def test_squad_a_answers_hold_their_baseline_and_the_abstention_targets(tmp_path: Path) -> None:
    metrics = _run_suite_against_baseline("squad_a_answers", tmp_path)["answer"]
    # SciFact claims asked of SQuAD's paragraphs are declined; SQuAD's own questions rarely are.
    assert metrics["abstention_rate"] >= 0.95
    assert metrics["false_abstention_rate"] <= 0.05
    # Measured 0.786 and 0.853 when these lines were written (targets 0.85 and 0.92 not yet met).
    assert metrics["answer_contains_gold"] >= 0.77
    assert metrics["citation_precision"] >= 0.84


@pytest.mark.benchmark
def test_questions_from_another_corpus_are_declined(tmp_path: Path) -> None:
    metrics = _run_suite_against_baseline("scifact_unanswerable_answers", tmp_path)["answer"]
    assert metrics["abstention_rate"] >= 0.95


@pytest.mark.benchmark
def test_shared_corpus_answers_hold_their_baseline(tmp_path: Path) -> None:
    runs = _run_suite_against_baseline("shared_corpus_answers", tmp_path)
    assert set(runs) == {"answer", "dev", "heldout", "unseen"}
    metrics = runs["answer"]
    # Off-topic questions were all declined before issue 11's work; that must stay so. Issue 11's targets
    # met since: at least 80 % of near-topic questions declined, at most 5 % of the answerable ones
    # (0.857 and 0.013 over all 104 questions when the 30 unseen ones joined; unseen alone 0.75 and 0.043).
    assert metrics["abstention_off_topic"] == 1.0
    assert metrics["abstention_near_topic"] >= 0.8
    assert metrics["false_abstention_rate"] <= 0.05
