"""Suite files are parsed and checked at the boundary; the baseline gate fails on a drop beyond tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.baseline import baseline_json, compare, regressions
from evals.data import DatasetError, load_dataset
from evals.suite import REPO_ROOT, SuiteError, load_suite

SUITES = REPO_ROOT / "evals" / "suites"


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_shipped_suites_parse_and_name_existing_paths_relative_to_the_repo_root() -> None:
    demo = load_suite(SUITES / "demo.toml")
    assert demo.dataset == REPO_ROOT / "evals" / "data" / "demo"
    assert demo.corpus == REPO_ROOT / "docs"
    assert demo.retrieval.modes == ("dense", "bm25", "hybrid")
    scifact = load_suite(SUITES / "scifact.toml")
    assert scifact.dataset == (REPO_ROOT.parent / "shared" / "evaldata" / "scifact").resolve()
    assert scifact.metrics == ("ndcg@10", "recall@10", "recall@100", "mrr@10", "recall@1")
    assert scifact.tolerance == 0.005


def test_data_option_replaces_the_dataset_folder(tmp_path: Path) -> None:
    suite = load_suite(SUITES / "scifact.toml", data=tmp_path)
    assert suite.dataset == tmp_path.resolve()


def test_dataset_path_relative_to_the_suite_file_wins(tmp_path: Path) -> None:
    (tmp_path / "mydata").mkdir()
    suite = load_suite(_suite(tmp_path, 'dataset = "mydata"\n'))
    assert suite.dataset == (tmp_path / "mydata").resolve()
    assert suite.kind == "retrieval" and suite.name == "suite"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('dataset = "x"\nkind = "chat"\n', "kind must be one of"),
        ('dataset = "x"\n[retrieval]\nmodes = ["sparse"]\n', "modes must be among"),
        ('dataset = "x"\n[retrieval]\nk = 10\n', "deeper than [retrieval] k = 10"),
        ('dataset = "x"\n[metrics]\nnames = ["accuracy"]\n', "unknown metric"),
        ('dataset = "x"\n[index]\nchunk_tokens = 4\n', "chunk_tokens must be >= 16"),
        ('dataset = "x"\ncorpus_ids = "section"\n', "per_document = false"),
        ("name = 'no dataset'\n", "no dataset given"),
        ("dataset = \n", "not valid TOML"),
    ],
)
def test_bad_suites_are_reported_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError, match="suite.toml: .*" + message.replace("[", r"\[").replace("]", r"\]")):
        load_suite(_suite(tmp_path, text))


def test_missing_suite_file_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match="suite file not found"):
        load_suite(tmp_path / "nope.toml")


def test_answer_suites_keep_their_own_tables_for_the_answer_runner(tmp_path: Path) -> None:
    path = _suite(tmp_path, 'kind = "answer"\ndataset = "."\n[answer]\nbackend = "extractive"\n')
    suite = load_suite(path)
    as_dict = suite.as_dict()
    assert as_dict["kind"] == "answer" and as_dict["answer"] == {"backend": "extractive"}
    assert as_dict["dataset"] == str(tmp_path.resolve()) and as_dict["suite_path"] == str(path.resolve())


def test_dataset_without_qrels_is_reported(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d", "text": "x"}\n')
    with pytest.raises(DatasetError, match="no qrels.tsv"):
        load_dataset(tmp_path)


def _report(ndcg: float, recall: float, p95: float = 10.0) -> dict:
    return {"runs": [{"name": "hybrid", "metrics": {"ndcg@10": ndcg, "recall@10": recall, "latency_p95_ms": p95}}]}


def test_drop_beyond_tolerance_is_a_regression() -> None:
    diffs = compare(_report(0.700, 0.80), _report(0.710, 0.80), tolerance=0.005)
    assert [(d.metric, round(d.delta, 3)) for d in regressions(diffs)] == [("ndcg@10", -0.01)]


def test_drop_within_tolerance_and_gains_pass() -> None:
    diffs = compare(_report(0.7051, 0.90), _report(0.710, 0.80), tolerance=0.005)
    assert regressions(diffs) == []


def test_latency_is_reported_but_never_gated() -> None:
    diffs = compare(_report(0.71, 0.80, p95=500.0), _report(0.71, 0.80, p95=5.0), tolerance=0.0)
    latency = next(d for d in diffs if d.metric == "latency_p95_ms")
    assert not latency.gated and not latency.regressed and regressions(diffs) == []


def test_a_rise_in_false_abstention_is_a_regression_and_answer_length_is_not_gated() -> None:
    def answers(false_abstention: float, words: float) -> dict:
        return {"runs": [{"name": "extractive", "metrics": {"false_abstention_rate": false_abstention,
                                                             "answer_words": words, "questions_answerable": 50.0}}]}

    worse = regressions(compare(answers(0.10, 40.0), answers(0.05, 57.0), tolerance=0.005))
    assert [d.metric for d in worse] == ["false_abstention_rate"]
    assert regressions(compare(answers(0.02, 80.0), answers(0.05, 57.0), tolerance=0.005)) == []


def test_a_run_missing_from_the_new_report_is_a_regression() -> None:
    current = {"runs": []}
    assert {d.metric for d in regressions(compare(current, _report(0.7, 0.8), tolerance=0.005))} == {
        "ndcg@10",
        "recall@10",
    }


def test_compact_baseline_drops_per_query_data() -> None:
    report = {
        "suite": "s", "kind": "retrieval", "created": "now", "settings": {}, "environment": {}, "query_count": 1,
        "runs": [{"name": "bm25", "metrics": {"ndcg@10": 0.5}, "per_query": {"q": {}}, "recall_curve": {}}],
    }
    compact = baseline_json(report)
    assert compact["runs"] == [{"name": "bm25", "metrics": {"ndcg@10": 0.5}}]
    json.dumps(compact)


def test_vector_index_comes_from_the_suite_or_the_option_and_is_checked(tmp_path: Path) -> None:
    assert load_suite(SUITES / "scifact.toml").index.vector_index == "auto"
    assert load_suite(SUITES / "scifact.toml", vector_index="ivf").index.vector_index == "ivf"
    assert load_suite(_suite(tmp_path, 'dataset = "x"\n[index]\nvector_index = "flat"\n')).index.vector_index == "flat"
    with pytest.raises(SuiteError, match=r"suite.toml: \[index\] vector index must be one of auto, flat, ivf"):
        load_suite(_suite(tmp_path, 'dataset = "x"\n[index]\nvector_index = "hnsw"\n'))


def test_an_ivf_evaluation_index_is_a_copy_of_the_embedded_one_and_auto_keeps_old_cache_names(tmp_path: Path) -> None:
    from evals.indexes import ensure_index, index_key
    from evals.suite import IndexRecipe
    from index.store import IndexStore, read_status

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The lighthouse on the north pier will be rebuilt in March.")
    (corpus / "b.txt").write_text("Black tea leaves are rolled and oxidised before drying.")
    assert index_key(corpus, IndexRecipe()) != index_key(corpus, IndexRecipe(vector_index="ivf"))
    exact = ensure_index(corpus, IndexRecipe(), tmp_path / "cache", show_progress=False)
    approximate = ensure_index(corpus, IndexRecipe(vector_index="ivf"), tmp_path / "cache", show_progress=False)
    assert approximate != exact
    assert read_status(exact).vector_index.startswith("flat")
    assert read_status(approximate).vector_index.startswith("ivf") and read_status(approximate).chunks == 2
    assert IndexStore.open(approximate).search_bm25("lighthouse", k=1)
    assert ensure_index(corpus, IndexRecipe(vector_index="ivf"), tmp_path / "cache") == approximate  # cached


def test_store_comes_from_the_suite_or_the_option_and_is_checked(tmp_path: Path) -> None:
    assert load_suite(SUITES / "scifact.toml").index.store == "folder"
    assert load_suite(SUITES / "scifact_milvus.toml").index.store == "milvus-lite"
    assert load_suite(SUITES / "scifact.toml", store="milvus-lite").index.store == "milvus-lite"
    with pytest.raises(SuiteError, match=r"suite.toml: \[index\] store must be one of folder, milvus-lite"):
        load_suite(_suite(tmp_path, 'dataset = "x"\n[index]\nstore = "elastic"\n'))


def test_a_milvus_lite_evaluation_index_is_a_copy_of_the_folder_one(tmp_path: Path) -> None:
    """The Milvus Lite target reuses the folder index's vectors (nothing embedded twice), and keeps the folder cache name."""
    pytest.importorskip("pymilvus", reason='needs the milvus extra: pip install -e ".[milvus]"')
    from evals.indexes import ensure_index, index_key
    from evals.suite import IndexRecipe
    from index.stores import open_store

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The lighthouse on the north pier will be rebuilt in March.")
    (corpus / "b.txt").write_text("Black tea leaves are rolled and oxidised before drying.")
    assert index_key(corpus, IndexRecipe()) != index_key(corpus, IndexRecipe(store="milvus-lite"))
    folder = ensure_index(corpus, IndexRecipe(), tmp_path / "cache", show_progress=False)
    milvus = ensure_index(corpus, IndexRecipe(store="milvus-lite"), tmp_path / "cache", show_progress=False)
    again = ensure_index(corpus, IndexRecipe(store="milvus-lite"), tmp_path / "cache", show_progress=False)
    assert str(milvus).startswith("milvus://") and again != milvus  # each run opens its own copy: Lite locks its file
    source, copy, other = open_store(folder), open_store(milvus), open_store(again)
    assert copy.counts() == other.counts() == source.counts() == (2, 2)
    for info in source.documents():
        assert copy.document_chunks(info.id)[0] == source.document_chunks(info.id)[0]
    for store in (source, copy, other):
        store.close()
