"""Read an evaluation dataset in BEIR's layout: a corpus, queries with optional gold answers, qrels.

A dataset folder holds ``queries.jsonl`` (``{"id" or "_id", "text", ...}``), ``qrels.tsv`` (or
BEIR's ``qrels/test.tsv``; header ``query-id corpus-id score``) and either a ``corpus.jsonl``
(one document a line) or, for a corpus of ordinary files, a ``corpus`` entry in the suite that
names a folder. Answer suites reuse :func:`load_dataset` for the queries' gold ``answers``.

>>> import json, tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}) + "\\n")
>>> _ = (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "what?", "answers": ["x"]}) + "\\n")
>>> _ = (folder / "qrels.tsv").write_text("query-id\\tcorpus-id\\tscore\\nq1\\td1\\t1\\n")
>>> data = load_dataset(folder)
>>> data.queries[0].text, data.queries[0].extra["answers"], data.qrels
('what?', ['x'], {'q1': {'d1': 1}})
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """The dataset folder is missing a file or a file is malformed (a user error, reported in one line)."""


@dataclass(frozen=True)
class Query:
    """One evaluation question; ``extra`` keeps every other field of its line (``answers``, ...)."""

    id: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """Queries and relevance judgements of one dataset, plus where its corpus is.

    ``corpus`` is either a BEIR ``corpus.jsonl`` file or a folder of documents; ``qrels`` maps
    query id -> {corpus id: relevance grade}. Only queries with at least one relevant document
    are kept, as BEIR's evaluation does.
    """

    folder: Path
    corpus: Path
    queries: list[Query]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_is_jsonl(self) -> bool:
        return self.corpus.is_file()


def load_dataset(folder: str | Path, corpus: str | Path | None = None, max_queries: int | None = None) -> Dataset:
    """Load ``folder`` (BEIR layout). ``corpus`` overrides ``folder/corpus.jsonl`` (a file or a folder).

    ``max_queries`` keeps the first N judged queries in file order (a quick, reproducible subset).
    Raises :class:`DatasetError` naming the missing or bad file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: dataset folder not found")
    corpus_path = Path(corpus) if corpus is not None else folder / "corpus.jsonl"
    if not corpus_path.exists():
        raise DatasetError(f"{corpus_path}: corpus not found (expected corpus.jsonl or a folder of documents)")
    qrels = read_qrels(_qrels_path(folder))
    queries = [query for query in read_queries(folder / "queries.jsonl") if query.id in qrels]
    if not queries:
        raise DatasetError(f"{folder}: no query in queries.jsonl has a judgement in the qrels")
    if max_queries is not None:
        queries = queries[:max_queries]
    kept = {query.id for query in queries}
    return Dataset(folder, corpus_path, queries, {qid: docs for qid, docs in qrels.items() if qid in kept})


def _qrels_path(folder: Path) -> Path:
    for candidate in (folder / "qrels.tsv", folder / "qrels" / "test.tsv"):
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder}: no qrels.tsv (or qrels/test.tsv)")


def read_queries(path: Path) -> list[Query]:
    """Queries of a ``queries.jsonl``, in file order."""
    if not path.is_file():
        raise DatasetError(f"{path}: queries file not found")
    queries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                query_id = str(record.get("_id", record.get("id")))
                text = str(record["text"])
            except (json.JSONDecodeError, KeyError, AttributeError):
                raise DatasetError(f"{path}: line {number} is not a query object with an id and a text") from None
            extra = {key: value for key, value in record.items() if key not in {"_id", "id", "text"}}
            queries.append(Query(query_id, text, extra))
    return queries


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query id -> {corpus id: grade}`` from a BEIR qrels TSV; grades <= 0 are not relevant and dropped."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            try:
                query_id, corpus_id, grade = row[0], row[1], int(row[2])
            except (IndexError, ValueError):
                raise DatasetError(f"{path}: line {number} is not 'query-id<TAB>corpus-id<TAB>score'") from None
            if grade > 0:
                qrels.setdefault(query_id, {})[corpus_id] = grade
    return qrels
