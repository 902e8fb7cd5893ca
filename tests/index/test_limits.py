"""Bounded work per file (issue 10, item 4): size, HTML tags, unpacked DOCX, chunk characters,
chunks per document and time, each refused with one clear line while the run goes on."""

from __future__ import annotations

import doctest
import io
import re
import threading
import zipfile
from pathlib import Path

import docx
import pytest

from index import limits as limits_module
from index import loaders
from index.chunking import Chunker, ChunkerSettings
from index.ingest import Ingestor, add_to_index
from index.limits import IngestLimits, LimitExceeded, TimeBudgetExceeded, check_time_budget, time_budget
from index.loaders import LoadError, load_file
from index.store import IndexSettings, IndexStore
from index.types import Document
from tests.conftest import rag_command


def _chunker(embedder, **options) -> Chunker:
    return Chunker(embedder.count_tokens, ChunkerSettings(), **options)


def test_limits_docstring_examples_run() -> None:
    assert doctest.testmod(limits_module).failed == 0


def test_a_300000_character_word_is_cut_into_chunks_of_bounded_characters(embedder) -> None:
    """The tokenizer reads the whole word as one unknown token: it used to become one chunk."""
    word = "x" * 300_000
    document = Document(id="w", source="w.txt", title="w", text=f"Before. {word} After.")
    chunks = _chunker(embedder, max_chars=3_000).split(document)
    assert len(chunks) >= 100
    assert max(len(chunk.text) for chunk in chunks) <= 3_000
    assert all(document.text[c.start : c.end] == c.text for c in chunks)
    assert sum(chunk.text.count("x") for chunk in chunks) >= 300_000  # nothing of it lost


@pytest.mark.timeout(300)  # a hang guard (it took many minutes), not a speed target: bench/hostile_inputs.py times it
def test_a_long_line_of_words_is_chunked_by_tokens_without_blowing_up(embedder) -> None:
    text = " ".join(f"word{number}" for number in range(60_000))  # one 500 kB line, no sentence end
    document = Document(id="l", source="l.txt", title="l", text=text)
    chunks = _chunker(embedder).split(document)
    assert max(chunk.token_count for chunk in chunks) <= 200
    assert chunks[-1].text.endswith("word59999")


def test_ordinary_prose_is_chunked_as_before(embedder) -> None:
    """The character cap only cuts what the token cap cannot: prose chunks are far below it."""
    text = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(400))
    document = Document(id="p", source="p.txt", title="p", text=text)
    capped = _chunker(embedder).split(document)
    uncapped = _chunker(embedder, max_chars=10_000_000).split(document)
    assert [(c.start, c.end) for c in capped] == [(c.start, c.end) for c in uncapped]


@pytest.mark.timeout(300)  # a hang guard (quadratic section search hit the time limit), not a speed target
def test_a_document_that_would_make_too_many_chunks_is_refused_before_embedding(tmp_path: Path, embedder) -> None:
    headings = tmp_path / "headings.md"
    headings.write_text("".join(f"## Heading {number}\n\n" for number in range(20_000)))  # 440 kB, 20,000 chunks
    store = IndexStore.create(tmp_path / "idx", IndexSettings(embedder.model, embedder.dimension))
    ingestor = Ingestor(store, embedder, show_progress=False, limits=IngestLimits(max_chunks_per_document=5_000))
    with pytest.raises(LoadError) as caught:
        ingestor.prepare_file(headings)
    assert caught.value.reason == (
        "too many chunks: more than 5,000 for one document (RAG_MAX_CHUNKS_PER_DOCUMENT raises the limit)"
    )


def test_a_file_over_its_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * 1_500_000)
    with pytest.raises(LoadError) as caught:
        load_file(big, IngestLimits(max_file_mb=1))
    assert caught.value.reason == (
        "too large: 1.5 MB, over the 1 MB limit for .txt files (--max-file-mb or $RAG_MAX_FILE_MB raises it)"
    )
    assert load_file(big, IngestLimits(max_file_mb=2))[0].text == "a" * 1_500_000


def test_an_html_page_of_too_many_tags_is_refused_before_parsing(tmp_path: Path) -> None:
    page = tmp_path / "tags.html"
    page.write_text("<p>" + "<b>x</b>" * 5_000)
    with pytest.raises(LoadError) as caught:
        load_file(page, IngestLimits(max_html_tags=1_000))
    assert caught.value.reason == "too many HTML tags: 5,001, over the limit of 1,000 ($RAG_MAX_HTML_TAGS raises it)"


def test_a_docx_that_unpacks_to_too_much_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("Small text.")
    document.save(buffer)
    bomb = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source, zipfile.ZipFile(bomb, "w") as target:
        for member in source.infolist():
            target.writestr(member, source.read(member.filename))
        target.writestr("word/media/padding.bin", b"\0" * 3_000_000, compress_type=zipfile.ZIP_DEFLATED)
    path = tmp_path / "bomb.docx"
    path.write_bytes(bomb.getvalue())
    assert path.stat().st_size < 100_000
    with pytest.raises(LoadError) as caught:
        load_file(path, IngestLimits(max_unpacked_mb=2))
    assert re.fullmatch(r"unpacks to [34] MB, over the 2 MB limit \(a zip bomb\?\)", caught.value.reason)


def test_empty_docx_paragraphs_cost_no_style_lookup(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Title", 1)
    for _ in range(20_000):
        document.add_paragraph("")
    document.add_paragraph("The only text.")
    path = tmp_path / "empty-paragraphs.docx"
    document.save(path)
    [loaded] = load_file(path)
    assert loaded.text == "Title\n\nThe only text."


def test_a_file_past_its_time_budget_is_one_failed_line_on_the_main_thread(tmp_path: Path, embedder, monkeypatch) -> None:
    (tmp_path / "slow.txt").write_text("slow")
    (tmp_path / "fine.txt").write_text("The fine file is indexed.")
    real_loader = loaders._LOADERS[".txt"]

    def stuck_loader(path: Path, raw: bytes, modified: float):
        while path.name == "slow.txt":  # pure Python that never checks the budget: the timer signal stops it
            pass
        return real_loader(path, raw, modified)

    monkeypatch.setitem(loaders._LOADERS, ".txt", stuck_loader)
    report = add_to_index(
        tmp_path / "idx", [tmp_path], embedder=embedder, show_progress=False,
        limits=IngestLimits(max_seconds_per_file=0.5),
    )
    assert [str(error) for error in report.failed] == [
        (
            f"{tmp_path / 'slow.txt'}: took longer than 0.5 s to read and chunk "
            "(--max-seconds-per-file or $RAG_MAX_SECONDS_PER_FILE raises it)"
        )
    ]
    assert report.added == 1


def test_the_time_budget_is_checked_in_loops_off_the_main_thread() -> None:
    outcome: list[str] = []

    def work() -> None:
        try:
            with time_budget(0.2):
                while True:
                    check_time_budget()
        except TimeBudgetExceeded as error:
            outcome.append(str(error))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert outcome and outcome[0].startswith("took longer than 0.2 s")
    check_time_budget()  # no budget outside the block


def test_limits_come_from_the_environment_and_bad_values_are_named() -> None:
    limits = IngestLimits.from_env({"RAG_MAX_FILE_MB": "3", "RAG_MAX_SECONDS_PER_FILE": "9"}, max_seconds_per_file=None)
    assert (limits.max_file_bytes(".pdf"), limits.max_seconds_per_file) == (3_000_000, 9)
    assert IngestLimits.from_env({}, max_file_mb=7).max_file_bytes(".txt") == 7_000_000
    with pytest.raises(ValueError, match="RAG_MAX_CHUNKS_PER_DOCUMENT must be a number, got 'many'"):
        IngestLimits.from_env({"RAG_MAX_CHUNKS_PER_DOCUMENT": "many"})
    with pytest.raises(ValueError, match="max_seconds_per_file must be > 0"):
        IngestLimits(max_seconds_per_file=0)


def test_rag_add_takes_the_size_limit_and_reports_the_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "big.md").write_text("# Big\n\n" + "Many words here. " * 20_000)
    (tmp_path / "docs" / "small.md").write_text("# Small\n\nA small note about tulips.")
    result = rag_command(
        "add", str(tmp_path / "docs"), "--index", str(tmp_path / "idx"), "--quiet", "--max-file-mb", "0.1", check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"failed  {tmp_path / 'docs' / 'big.md'}: too large: 0.3 MB, over the 0.1 MB limit for .md files" in result.stderr
    assert "added 1," in result.stderr


def test_a_long_line_without_spaces_counts_against_the_chunk_cap_by_its_characters(embedder) -> None:
    """One window of such a line is one unknown token, so only its characters tell how many chunks it makes:
    a 50 MB line once made 16,667 chunks under a cap of 5,000."""
    document = Document(id="x", source="x.txt", title="x", text="abcdefghij" * 100_000)  # 1 MB, no space
    with pytest.raises(LimitExceeded, match="too many chunks: more than 100 for one document"):
        _chunker(embedder, max_chars=3_000, max_chunks=100).split(document)
    assert len(_chunker(embedder, max_chars=3_000, max_chunks=400).split(document)) == 334
