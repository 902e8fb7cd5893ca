"""Suite files: a TOML recipe naming a dataset, the index settings, the retriever settings and metrics.

A retrieval suite (``kind = "retrieval"``, the default)::

    name = "scifact"
    dataset = "../shared/evaldata/scifact"   # relative to this file, else to the repo root
    # corpus = "docs"                        # optional: a folder of documents instead of corpus.jsonl
    #                                        # (or a list of folders, indexed together: ["../shared/corpus", "docs"])
    # corpus_ids = "section"                 # qrels name "<file>#<heading>" instead of documents
    # max_queries = 50                       # optional: the first N judged queries only

    [index]                                  # how the evaluation index is built (cached by content)
    model = "all-MiniLM-L6-v2"
    # embedder = "torch"                     # optional: onnx-int8 (default), onnx-fp32 or torch
    # vector_index = "ivf"                   # optional: auto (default), flat or ivf (approximate)
    # store = "milvus-lite"                  # optional: folder (default) or milvus-lite (the folder's index copied in)
    chunk_tokens = 200
    overlap_tokens = 32

    [retrieval]
    modes = ["dense", "bm25", "hybrid"]
    k = 100                                  # depth of each ranking (>= the largest metric cutoff)
    per_document = true                      # best chunk per document: document-level qrels
    # reranker = "models/my-cross-encoder"   # optional local cross-encoder: each mode is also run reranked
    # rerank_depth = 50                      # how many passages it re-scores

    [metrics]
    names = ["ndcg@10", "recall@10", "recall@100", "mrr@10", "recall@1"]
    tolerance = 0.005                        # a drop larger than this against the baseline fails

An answer suite (``kind = "answer"``) is handed, as a plain dict (:meth:`Suite.as_dict`), to
``evals.answers.run_answer_suite``; it may carry any further tables that runner reads. A feedback
suite (``kind = "feedback"``, written by ``rag eval --from-feedback``) names an existing index
(``index_dir``) instead of a dataset and carries its questions inline; ``evals.feedback`` runs it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.chunking import ChunkerSettings
from index.embedding import DEFAULT_EMBEDDER, DEFAULT_MODEL, parse_embedder_kind
from index.vectors import check_setting as check_vector_index_setting

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout this package lives in: suite paths may be relative to it (``../shared/...``)."""

SUITE_KINDS = ("retrieval", "answer", "feedback")
CORPUS_ID_KINDS = ("document", "section")
RETRIEVAL_MODES = ("dense", "bm25", "hybrid")
INDEX_STORES = ("folder", "milvus-lite")
DEFAULT_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "recall@1")
DEFAULT_TOLERANCE = 0.005
_METRIC_PATTERN = re.compile(r"^(ndcg|recall|precision|mrr|map|hit_rate|f1)@[1-9][0-9]*$")


class SuiteError(ValueError):
    """A suite file is missing, malformed or names something that does not exist."""


@dataclass(frozen=True)
class IndexRecipe:
    """The settings an evaluation index is built with; part of its cache key."""

    model: str = DEFAULT_MODEL
    chunk_tokens: int = ChunkerSettings().chunk_tokens
    overlap_tokens: int = ChunkerSettings().overlap_tokens
    embedder: str = DEFAULT_EMBEDDER
    vector_index: str = "auto"
    store: str = "folder"
    """``folder`` or ``milvus-lite``: the same index (same chunks and vectors) in a Milvus Lite file."""

    @property
    def chunker(self) -> ChunkerSettings:
        return ChunkerSettings(self.chunk_tokens, self.overlap_tokens)


@dataclass(frozen=True)
class RetrievalSettings:
    """What each run asks the retriever: the modes to compare, the ranking depth, document-level or not."""

    modes: tuple[str, ...] = ("hybrid",)
    k: int = 100
    per_document: bool = True
    reranker: Path | None = None
    rerank_depth: int = 50


@dataclass
class Suite:
    """A parsed suite file with its paths resolved. ``raw`` is the TOML as read."""

    name: str
    path: Path
    kind: str
    dataset: Path
    corpus: Path | None
    corpus_ids: str
    index: IndexRecipe
    retrieval: RetrievalSettings
    metrics: tuple[str, ...]
    tolerance: float
    max_queries: int | None
    raw: dict[str, Any] = field(default_factory=dict)
    extra_corpora: tuple[Path, ...] = ()
    """Further folders indexed with ``corpus`` (a suite whose ``corpus`` is a list)."""

    def as_dict(self) -> dict[str, Any]:
        """The raw TOML with ``dataset``, ``corpus`` and ``suite_path`` replaced by absolute paths."""
        data = dict(self.raw)
        data.update(
            name=self.name,
            kind=self.kind,
            dataset=str(self.dataset),
            corpus=str(self.corpus) if self.corpus else None,
            extra_corpora=[str(path) for path in self.extra_corpora],
            suite_path=str(self.path),
            tolerance=self.tolerance,
        )
        return data

    def settings(self) -> dict[str, Any]:
        """The settings a report records, so two reports can be told apart."""
        return {
            "suite": self.name,
            "kind": self.kind,
            "dataset": display_path(self.dataset),
            "corpus": display_path(self.corpus) if self.corpus else None,
            **({"extra_corpora": [display_path(p) for p in self.extra_corpora]} if self.extra_corpora else {}),
            "corpus_ids": self.corpus_ids,
            "max_queries": self.max_queries,
            "index": vars(self.index),
            "retrieval": {
                **vars(self.retrieval),
                "modes": list(self.retrieval.modes),
                "reranker": display_path(self.retrieval.reranker) if self.retrieval.reranker else None,
            },
            "metrics": list(self.metrics),
            "tolerance": self.tolerance,
        }


def load_suite(
    path: str | Path,
    data: str | Path | None = None,
    embedder: str | None = None,
    vector_index: str | None = None,
    store: str | None = None,
) -> Suite:
    """Read and check a suite file; ``data`` replaces the dataset folder it names, ``embedder``,
    ``vector_index`` and ``store`` its [index] settings of those names.

    Raises :class:`SuiteError` with a one-line reason.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: suite file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML ({error})") from None
    kind = str(raw.get("kind", "retrieval"))
    if kind not in SUITE_KINDS:
        raise SuiteError(f"{path}: kind must be one of {', '.join(SUITE_KINDS)}; got {kind!r}")
    if kind == "feedback":
        if not raw.get("index_dir"):
            raise SuiteError(f"{path}: a feedback suite names the index it asks (index_dir = \"...\")")
        dataset = resolve_path(str(raw["index_dir"]), path)  # the questions are in the suite itself
    elif data is not None:
        dataset = Path(data).expanduser().resolve()
    elif "dataset" in raw:
        dataset = resolve_path(str(raw["dataset"]), path)
    else:
        raise SuiteError(f"{path}: no dataset given (set dataset = \"...\" or pass --data)")
    corpora = raw.get("corpus") or []
    corpora = [resolve_path(str(folder), path) for folder in ([corpora] if isinstance(corpora, str) else corpora)]
    corpus = corpora[0] if corpora else None
    metrics_table = _table(raw, "metrics", path)
    suite = Suite(
        name=str(raw.get("name", path.stem)),
        path=path.resolve(),
        kind=kind,
        dataset=dataset,
        corpus=corpus,
        corpus_ids=str(raw.get("corpus_ids", "document")),
        index=_index_recipe(
            {
                **_table(raw, "index", path),
                **({"embedder": embedder} if embedder else {}),
                **({"vector_index": vector_index} if vector_index else {}),
                **({"store": store} if store else {}),
            },
            path,
        ),
        retrieval=_retrieval_settings(_table(raw, "retrieval", path), path),
        metrics=tuple(metrics_table.get("names", DEFAULT_METRICS)),
        tolerance=float(metrics_table.get("tolerance", raw.get("tolerance", DEFAULT_TOLERANCE))),
        max_queries=_optional_positive_int(raw.get("max_queries"), "max_queries", path),
        raw=raw,
        extra_corpora=tuple(corpora[1:]),
    )
    _check_metrics(suite)
    return suite


def resolve_path(value: str, suite_path: Path) -> Path:
    """A path from a suite: absolute, else relative to the suite's folder if it exists there, else to the repo root."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate
    for base in (suite_path.resolve().parent, REPO_ROOT, Path.cwd()):
        if (base / candidate).exists():
            return (base / candidate).resolve()
    return (REPO_ROOT / candidate).resolve()  # reported as missing by whoever opens it


def display_path(path: Path) -> str:
    """``path`` relative to the repo root when it is near it (``../shared/...``), so reports compare across checkouts."""
    try:
        return Path(os.path.relpath(path, REPO_ROOT)).as_posix() if path.is_relative_to(REPO_ROOT.parent) else str(path)
    except ValueError:
        return str(path)


def _table(raw: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise SuiteError(f"{path}: [{name}] must be a table")
    return table


def _index_recipe(table: dict[str, Any], path: Path) -> IndexRecipe:
    defaults = IndexRecipe()
    recipe = IndexRecipe(
        model=str(table.get("model", defaults.model)),
        chunk_tokens=int(table.get("chunk_tokens", defaults.chunk_tokens)),
        overlap_tokens=int(table.get("overlap_tokens", defaults.overlap_tokens)),
        embedder=str(table.get("embedder", defaults.embedder)),
        vector_index=str(table.get("vector_index", defaults.vector_index)),
        store=str(table.get("store", defaults.store)),
    )
    if recipe.store not in INDEX_STORES:
        raise SuiteError(f"{path}: [index] store must be one of {', '.join(INDEX_STORES)}; got {recipe.store!r}")
    try:
        recipe.chunker  # noqa: B018 -- validates the chunk sizes now, with the suite's name in the message
        parse_embedder_kind(recipe.embedder)
        check_vector_index_setting(recipe.vector_index)
    except ValueError as error:
        raise SuiteError(f"{path}: [index] {error}") from None
    return recipe


def _retrieval_settings(table: dict[str, Any], path: Path) -> RetrievalSettings:
    modes = table.get("modes", table.get("mode", ["hybrid"]))
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    unknown = [mode for mode in modes if mode not in RETRIEVAL_MODES]
    if unknown or not modes:
        raise SuiteError(f"{path}: [retrieval] modes must be among {', '.join(RETRIEVAL_MODES)}; got {list(modes)}")
    k = _optional_positive_int(table.get("k", 100), "[retrieval] k", path)
    reranker = resolve_path(str(table["reranker"]), path) if table.get("reranker") else None
    if reranker is not None and not reranker.is_dir():
        raise SuiteError(f"{path}: [retrieval] reranker folder not found: {reranker}")
    depth = _optional_positive_int(table.get("rerank_depth", 50), "[retrieval] rerank_depth", path)
    return RetrievalSettings(
        modes=modes,
        k=k or 100,
        per_document=bool(table.get("per_document", True)),
        reranker=reranker,
        rerank_depth=depth or 50,
    )


def _optional_positive_int(value: Any, name: str, path: Path) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or value < 1:
        raise SuiteError(f"{path}: {name} must be a positive integer, got {value!r}")
    return value


def _check_metrics(suite: Suite) -> None:
    if suite.corpus_ids not in CORPUS_ID_KINDS:
        raise SuiteError(f"{suite.path}: corpus_ids must be one of {', '.join(CORPUS_ID_KINDS)}; got {suite.corpus_ids!r}")
    if suite.corpus_ids == "section" and suite.retrieval.per_document:
        raise SuiteError(f"{suite.path}: corpus_ids = \"section\" needs [retrieval] per_document = false")
    if suite.kind != "retrieval":
        return  # an answer suite's metrics belong to its own runner
    bad = [name for name in suite.metrics if not _METRIC_PATTERN.match(name)]
    if bad:
        raise SuiteError(f"{suite.path}: unknown metric(s) {bad}; use names like ndcg@10, recall@100, mrr@10")
    deepest = max(int(name.split("@")[1]) for name in suite.metrics)
    if deepest > suite.retrieval.k:
        raise SuiteError(f"{suite.path}: metric cutoff @{deepest} is deeper than [retrieval] k = {suite.retrieval.k}")
    if suite.tolerance < 0:
        raise SuiteError(f"{suite.path}: tolerance must be >= 0, got {suite.tolerance}")
