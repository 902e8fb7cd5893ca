"""The `rag` command line end to end on real documents: add, status, search (text and JSON), delete."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from index.store import IndexStore
from rag.retrieval.retriever import Retriever
from tests.conftest import EVALDATA, copy_index, rag_command, require_shared

CORPUS_FACTS = [
    ("What does the pass statement do?", "controlflow"),
    ("Which event is emitted before a listener is added to an EventEmitter?", "events.md"),
    ("Who leads the US side of the AI safety talks with China?", "us-china-ai-safety-talks.txt"),
    ("How do I create a symbolic link with the fs module?", "fs.md"),
]


@pytest.mark.parametrize(("question", "expected_source"), CORPUS_FACTS)
def test_search_finds_the_passage_holding_a_fact(shared_corpus_index, question, expected_source):
    hits = json.loads(rag_command("search", question, "--index", str(shared_corpus_index), "--json", "-k", "3").stdout)
    assert expected_source in Path(hits[0]["source"]).name
    assert [hit["rank"] for hit in hits] == [1, 2, 3]
    assert set(hits[0]) >= {"document_id", "chunk_id", "score", "source", "page", "text"}


def test_pdf_results_carry_page_numbers(shared_corpus_index):
    hits = json.loads(
        rag_command(
            "search",
            "class and instance variables",
            "--index",
            str(shared_corpus_index),
            "--json",
            "--source",
            "*.pdf",
            "-k",
            "5",
        ).stdout
    )
    assert hits and all(hit["source"].endswith(".pdf") for hit in hits)
    assert all(isinstance(hit["page"], int) and hit["page"] >= 1 for hit in hits)


def test_status_reports_counts_and_model(shared_corpus_index):
    status = json.loads(rag_command("status", "--index", str(shared_corpus_index), "--json").stdout)
    assert status["documents"] == 27
    assert status["chunks"] > status["documents"]
    assert status["embedding_model"] == "all-MiniLM-L6-v2" and status["dimension"] == 384


def test_delete_removes_a_document_from_search(shared_corpus_index, tmp_path):
    index_dir = copy_index(shared_corpus_index, tmp_path / "idx")
    news = str((EVALDATA.parent / "corpus" / "news" / "us-china-ai-safety-talks.txt").resolve())
    rag_command("delete", news, "--index", str(index_dir))
    hits = json.loads(rag_command("search", "AI safety talks", "--index", str(index_dir), "--json").stdout)
    assert all(hit["document_id"] != news for hit in hits)


def test_user_errors_are_one_clear_line(tmp_path):
    missing = rag_command("search", "anything", "--index", str(tmp_path / "none"), check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        (
            f"error: {tmp_path / 'none'}: no index here (no manifest.json); "
            f"create one with `rag add PATH --index {tmp_path / 'none'}`"
        )
    ]
    nothing = rag_command("add", str(tmp_path / "nope.txt"), "--index", str(tmp_path / "idx"), check=False)
    assert nothing.returncode == 1
    assert f"{tmp_path / 'nope.txt'}: no such file or directory" in nothing.stderr


def test_scifact_ids_are_kept_and_queries_find_relevant_documents(tmp_path, embedder):
    """A slice of SciFact (the documents 20 queries cite, plus 400 distractors) through `rag add`."""
    scifact = require_shared(EVALDATA / "scifact")
    queries = [json.loads(line) for line in (scifact / "queries.jsonl").read_text().splitlines()]
    qrels: dict[str, set[str]] = {}
    for line in (scifact / "qrels.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, _ = line.split("\t")
        qrels.setdefault(query_id, set()).add(doc_id)
    chosen = random.Random(13).sample([q for q in queries if q["id"] in qrels], 20)
    documents = [json.loads(line) for line in (scifact / "corpus.jsonl").read_text().splitlines()]
    wanted = set().union(*(qrels[q["id"]] for q in chosen))
    keep = [d for d in documents if d["id"] in wanted] + random.Random(5).sample(documents, 400)
    unique = {d["id"]: d for d in keep}
    corpus = tmp_path / "scifact-slice.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in unique.values()))

    rag_command("add", str(corpus), "--index", str(tmp_path / "idx"), "--quiet")

    hits = json.loads(
        rag_command("search", chosen[0]["text"], "--index", str(tmp_path / "idx"), "--json", "--per-document").stdout
    )
    assert len(hits) == 10 and {hit["document_id"] for hit in hits} <= set(unique)  # the corpus's own ids
    retriever = Retriever(IndexStore.open(tmp_path / "idx"), embedder)
    found = 0
    for query in chosen:
        top10 = {p.document_id for p in retriever.search(query["text"], k=10, per_document=True)}
        found += bool(qrels[query["id"]] & top10)
    assert found >= 18, f"only {found} of 20 SciFact queries found a relevant document in the top 10"
