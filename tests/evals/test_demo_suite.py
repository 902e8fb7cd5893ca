"""``rag eval`` end to end on the demo suite (the user guide in docs/, 20 questions): it matches its
stored baseline, writes its reports, fails with exit code 3 on a regression, and dispatches answer suites."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from evals.cli import REGRESSION_EXIT_CODE, eval_command
from evals.runner import run_suite
from evals.suite import REPO_ROOT, load_suite

DEMO_SUITE = REPO_ROOT / "evals" / "suites" / "demo.toml"
DEMO_BASELINE = REPO_ROOT / "evals" / "baselines" / "demo.json"


@pytest.fixture(scope="module", autouse=True)
def eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private index cache for this module: the demo index is built once, here, not in ~/.cache."""
    cache = tmp_path_factory.mktemp("eval-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_EVAL_CACHE", str(cache))
        yield cache


def _rag_eval(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.command()(eval_command)
    result = CliRunner().invoke(app, [*map(str, args), "--quiet"])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_demo_suite_matches_its_baseline_and_writes_its_reports(tmp_path: Path) -> None:
    code, output = _rag_eval(DEMO_SUITE, "--baseline", DEMO_BASELINE, "--out", tmp_path)
    assert code == 0, output
    report = json.loads((tmp_path / "report.json").read_text())
    assert [run["name"] for run in report["runs"]] == ["dense", "bm25", "hybrid"]
    assert report["query_count"] == 20 and report["environment"]["packages"]["ranx"]
    assert all(diff["regressed"] is False for diff in report["baseline_diff"])
    hybrid = report["runs"][2]
    assert len(hybrid["per_query"]) == 20 and {"latency_ms", "retrieved", "ndcg@10"} <= set(hybrid["per_query"]["demo-01"])
    markdown = (tmp_path / "report.md").read_text()
    assert "![recall at k](recall_at_k.svg)" in markdown and "## Against the baseline" in markdown
    assert (tmp_path / "recall_at_k.svg").read_text().startswith("<svg")


def test_a_drop_beyond_the_tolerance_fails_with_exit_code_3(tmp_path: Path) -> None:
    baseline = json.loads(DEMO_BASELINE.read_text())
    hybrid = next(run for run in baseline["runs"] if run["name"] == "hybrid")
    if hybrid["metrics"]["mrr@10"] > 0.98:
        pytest.skip("the demo's hybrid MRR@10 is near perfect; no clearly better baseline can be faked")
    hybrid["metrics"]["mrr@10"] += 0.02  # pretend it used to be better, by four times the tolerance
    doctored = tmp_path / "better-baseline.json"
    doctored.write_text(json.dumps(baseline))
    code, output = _rag_eval(DEMO_SUITE, "--baseline", doctored, "--out", tmp_path / "report")
    assert code == REGRESSION_EXIT_CODE, output
    assert "hybrid mrr@10" in output
    diff = json.loads((tmp_path / "report" / "report.json").read_text())["baseline_diff"]
    assert [(d["run"], d["metric"]) for d in diff if d["regressed"]] == [("hybrid", "mrr@10")]


def test_a_bad_suite_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    suite = tmp_path / "bad.toml"
    suite.write_text('dataset = "no/such/folder"\n')
    code, output = _rag_eval(suite, "--out", tmp_path / "out")
    assert code == 1 and "dataset folder not found" in output


def test_answer_suites_are_handed_to_the_answer_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict = {}

    def run_answer_suite(suite: dict, retriever, out_dir: Path) -> dict:
        seen.update(suite=suite, passages=retriever.search("How do I add files?", k=1), out_dir=out_dir)
        return {"answer_f1": 0.5, "per_query": {"q1": {"answer_f1": 0.5}}}

    monkeypatch.setitem(sys.modules, "evals.answers", types.SimpleNamespace(run_answer_suite=run_answer_suite))
    suite_file = tmp_path / "answers.toml"
    suite_file.write_text(
        f'kind = "answer"\ndataset = "{REPO_ROOT / "evals/data/demo"}"\ncorpus = "{REPO_ROOT / "docs"}"\n'
        '[answers]\nk = 3\n'
    )
    report = run_suite(load_suite(suite_file), tmp_path / "out", show_progress=False)
    assert [(run.name, run.metrics) for run in report.runs] == [("answer", {"answer_f1": 0.5})]
    assert report.runs[0].per_query == {"q1": {"answer_f1": 0.5}}
    assert seen["suite"]["answers"] == {"k": 3} and seen["suite"]["dataset"] == str(REPO_ROOT / "evals/data/demo")
    assert seen["passages"] and seen["out_dir"] == tmp_path / "out"


def test_a_suite_with_a_reranker_reports_each_mode_without_and_with_it(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    from index.embedding import resolve_model_path

    # A local cross-encoder with an untrained head: its ranking is arbitrary, which the report must show.
    model_dir = tmp_path / "cross-encoder"
    CrossEncoder(resolve_model_path("all-MiniLM-L6-v2"), num_labels=1).save(str(model_dir))
    suite_file = tmp_path / "rerank.toml"
    suite_file.write_text(
        DEMO_SUITE.read_text()
        .replace('dataset = "evals/data/demo"', f'dataset = "{REPO_ROOT / "evals/data/demo"}"')
        .replace('corpus = "docs"', f'corpus = "{REPO_ROOT / "docs"}"')
        .replace('modes = ["dense", "bm25", "hybrid"]', f'modes = ["hybrid"]\nreranker = "{model_dir}"\nrerank_depth = 20')
    )
    report = run_suite(load_suite(suite_file), tmp_path / "out", show_progress=False)
    assert [run.name for run in report.runs] == ["hybrid", "hybrid+rerank"]
    assert report.settings["retrieval"]["reranker"] and report.settings["retrieval"]["rerank_depth"] == 20
    plain, reranked = report.runs
    assert any(plain.per_query[q]["retrieved"] != reranked.per_query[q]["retrieved"] for q in plain.per_query)
