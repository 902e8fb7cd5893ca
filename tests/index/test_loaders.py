"""Tests of index.loaders on small files written here and on the shared real corpus."""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import zipfile
from pathlib import Path

import docx
import pypdf
import pytest

from index import loaders
from index.loaders import SUPPORTED_SUFFIXES, LoadError, SkippedFile, discover_files, load_file
from index.types import Document

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def corpus_file(relative: str) -> Path:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"../shared/corpus not found: {path}")
    return path


def load_one(path: Path) -> Document:
    [document] = load_file(path)
    return document


def load_error(path: Path) -> LoadError:
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert str(caught.value) == f"{caught.value.path}: {caught.value.reason}"
    assert "\n" not in str(caught.value)
    return caught.value


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF, one line of Helvetica text per string, written by hand
    (neither reportlab nor fpdf2 is installed)."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for index, lines in enumerate(pages):
        page_id, content_id = 4 + 2 * index, 5 + 2 * index
        kids.append(f"{page_id} 0 R")
        shown = " ".join(f"({line}) Tj T*" for line in lines)
        content = f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode()
        objects[page_id] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode()
        objects[content_id] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    info = ""
    if title is not None:
        info_id = 4 + 2 * len(pages)
        objects[info_id] = f"<< /Title ({title}) >>".encode()
        info = f" /Info {info_id} 0 R"
    out = b"%PDF-1.4\n"
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offsets[number]:010d} 00000 n \n" for number in sorted(objects)).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return out


def test_module_docstring_examples_run() -> None:
    assert doctest.testmod(loaders).failed == 0


def test_supported_suffixes_are_the_documented_ones() -> None:
    assert SUPPORTED_SUFFIXES == {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl"}


# --------------------------------------------------------------------------- discovery


def test_discover_walks_folders_sorted_and_reports_what_it_skips(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("# B\n")
    (tmp_path / "a.txt").write_text("a\n")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "c.PDF").write_bytes(b"%PDF")
    (tmp_path / "sub" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "sub" / "Makefile").write_text("all:\n")
    (tmp_path / ".hidden.md").write_text("# secret\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("never seen\n")

    files, skipped, errors = discover_files([tmp_path])

    assert files == [tmp_path / "a.txt", tmp_path / "b.md", tmp_path / "sub" / "deeper" / "c.PDF"]
    assert sorted(skipped, key=lambda s: s.path) == [
        SkippedFile(str(tmp_path / ".git"), "hidden folder"),
        SkippedFile(str(tmp_path / ".hidden.md"), "hidden file"),
        SkippedFile(str(tmp_path / "sub" / "Makefile"), "unsupported type (no suffix)"),
        SkippedFile(str(tmp_path / "sub" / "image.png"), "unsupported type .png"),
    ]
    assert errors == []


def test_discover_reports_a_missing_path_and_lists_a_file_once(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    missing = tmp_path / "missing"

    files, skipped, errors = discover_files([note, str(missing), tmp_path])

    assert files == [note]
    assert skipped == []
    assert [str(error) for error in errors] == [f"{missing}: no such file or directory"]


def test_discover_does_not_follow_a_symlinked_folder(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n")
    (tmp_path / "docs" / "loop").symlink_to(tmp_path / "docs")

    files, skipped, errors = discover_files([tmp_path / "docs"])

    assert files == [tmp_path / "docs" / "a.md"]
    assert skipped == [
        SkippedFile(
            str(tmp_path / "docs" / "loop"), "symbolic link to a folder (not followed; --follow-symlinks follows it)"
        )
    ]
    assert errors == []


def test_discover_loads_a_hidden_file_named_explicitly(tmp_path: Path) -> None:
    hidden = tmp_path / ".notes.md"
    hidden.write_text("# Notes\n")
    assert discover_files([hidden]) == ([hidden], [], [])


# --------------------------------------------------------------------------- plain text


def test_text_file_document_fields(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    raw = b"Quarterly report\r\n\r\nSales rose.   \r\n\r\n\r\n\r\nCosts fell.\x0c\r\n"
    path.write_bytes(raw)

    document = load_one(path)

    assert document.id == document.source == str(path.resolve())
    assert document.title == "Quarterly report"
    assert document.text == "Quarterly report\n\nSales rose.\n\nCosts fell."
    assert document.sections == [] and document.page_starts == []
    assert document.metadata == {
        "mime_type": "text/plain",
        "modified": path.stat().st_mtime,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "format": "text",
        "encoding": "utf-8",
    }


def test_text_title_is_the_stem_unless_a_short_first_line_stands_alone(tmp_path: Path) -> None:
    no_blank = tmp_path / "no-blank.txt"
    no_blank.write_text("First line\nsecond line\n")
    long_line = tmp_path / "long-line.txt"
    long_line.write_text("word " * 40 + "\n\nbody\n")

    assert load_one(no_blank).title == "no-blank"
    assert load_one(long_line).title == "long-line"


def test_cp1252_text_loads_and_records_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café — naïve “quoted” façade\n".encode("cp1252"))

    document = load_one(path)

    assert document.text == "Café — naïve “quoted” façade"
    assert document.metadata["encoding"] == "cp1252"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_text_with_a_byte_order_mark_loads(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("Grüße\n\naus München\n".encode(encoding))

    document = load_one(path)

    assert document.text == "Grüße\n\naus München"
    assert document.title == "Grüße"


# --------------------------------------------------------------------------- Markdown

MARKDOWN = """\
<!-- YAML
added: v1.0.0
-->
# The `fs` module

Intro text.

## File paths ##

```sh
# not a heading, a shell comment
```

### URL object **support**

Body with a [link](https://example.com).

~~~
## also not a heading
~~~

## [Links](x.md) and \\_escapes\\_

End.
"""


def test_markdown_heading_paths_offsets_and_title(tmp_path: Path) -> None:
    path = tmp_path / "fs.md"
    path.write_text(MARKDOWN)

    document = load_one(path)

    assert document.title == "The fs module"
    assert [section.heading for section in document.sections] == [
        "The fs module",
        "The fs module > File paths",
        "The fs module > File paths > URL object support",
        "The fs module > Links and _escapes_",
    ]
    heading_lines = ["# The `fs` module", "## File paths ##", "### URL object **support**", "## [Links]"]
    for section, line in zip(document.sections, heading_lines):
        assert document.text[section.start :].startswith(line)
    assert "YAML" not in document.text  # HTML comments are dropped
    assert "# not a heading, a shell comment" in document.text  # code is kept
    assert document.metadata["format"] == "markdown"
    assert document.metadata["mime_type"] == "text/markdown"


def test_markdown_without_a_level_one_heading_is_titled_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "notes.markdown"
    path.write_text("## Only a subheading\n\ntext\n")
    document = load_one(path)
    assert document.title == "notes"
    assert [section.heading for section in document.sections] == ["Only a subheading"]


# --------------------------------------------------------------------------- HTML

HTML = """\
<!DOCTYPE html>
<html><head><title>  Install guide &#8212; Demo 1.0 documentation </title>
<style>body { color: red }</style><script>var nav = "Previous topic";</script></head>
<body>
<nav>Home | Previous topic</nav>
<div class="related" role="navigation"><h3>Navigation</h3></div>
<div class="sphinxsidebar"><h3>Table of Contents</h3></div>
<div class="body" role="main">
  <h1>Install<a class="headerlink" href="#install">¶</a></h1>
  <p>Pick   your
     platform.</p>
  <h2>On <code>Linux</code>¶</h2>
  <ul><li>Use apt.</li><li>Or <b>dnf</b>.</li></ul>
  <pre>$ sudo apt install demo
    --yes</pre>
  <h3>Details</h3>
  <table><tr><th>OS</th><th>Tool</th></tr><tr><td>Debian</td><td>apt</td></tr></table>
  <p>line one<br>line two</p>
  <h2>On Windows</h2>
  <p>Run the installer.</p>
</div>
<div class="footer">Copyright 2024</div>
</body></html>
"""


def test_html_keeps_the_main_content_as_paragraphs_with_heading_sections(tmp_path: Path) -> None:
    path = tmp_path / "install.html"
    path.write_text(HTML)

    document = load_one(path)

    assert document.title == "Install guide"
    assert document.text == (
        "Install\n\nPick your platform.\n\nOn Linux\n\nUse apt.\n\nOr dnf.\n\n"
        "$ sudo apt install demo\n    --yes\n\nDetails\n\nOS | Tool\n\nDebian | apt\n\n"
        "line one\nline two\n\nOn Windows\n\nRun the installer."
    )
    assert [section.heading for section in document.sections] == [
        "Install",
        "Install > On Linux",
        "Install > On Linux > Details",
        "Install > On Windows",
    ]
    for section in document.sections:
        assert document.text[section.start :].startswith(section.heading.split(" > ")[-1])
    assert document.metadata["format"] == "html"


def test_html_without_main_element_drops_navigation_chrome(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        "<html><body><header><a href='/'>Site banner</a></header>"
        "<div role='navigation'>Menu</div><article><header><h1>Post</h1></header>"
        "<p>Words.</p></article><footer>Footer</footer></body></html>"
    )

    document = load_one(path)

    assert document.text == "Post\n\nWords."
    assert document.title == "Post"  # no <title>: the first heading


# --------------------------------------------------------------------------- DOCX


def test_docx_paragraphs_headings_and_tables(tmp_path: Path) -> None:
    word = docx.Document()
    word.core_properties.title = "Field manual"
    word.add_heading("Setup", level=1)
    word.add_paragraph("Unpack the box.")
    word.add_heading("Power", level=2)
    table = word.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Voltage", "230 V"), ("Plug", "Type F")]):
        row.cells[0].text, row.cells[1].text = cells
    word.add_heading("Care", level=1)
    word.add_paragraph("Keep it dry.")
    path = tmp_path / "manual.docx"
    word.save(path)

    document = load_one(path)

    assert document.title == "Field manual"
    assert document.text == (
        "Setup\n\nUnpack the box.\n\nPower\n\nVoltage | 230 V\nPlug | Type F\n\nCare\n\nKeep it dry."
    )
    assert [(document.text[s.start : s.start + 5], s.heading) for s in document.sections] == [
        ("Setup", "Setup"),
        ("Power", "Setup > Power"),
        ("Care\n", "Care"),
    ]
    assert document.metadata["format"] == "docx"
    assert document.metadata["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_docx_without_a_core_title_is_titled_by_its_first_heading(tmp_path: Path) -> None:
    word = docx.Document()
    word.core_properties.title = ""
    word.add_paragraph("Preface.")
    word.add_heading("Chapter one", level=1)
    path = tmp_path / "book.docx"
    word.save(path)

    assert load_one(path).title == "Chapter one"


# --------------------------------------------------------------------------- PDF


def test_pdf_pages_are_numbered_and_titled_from_metadata(tmp_path: Path) -> None:
    path = tmp_path / "guide.pdf"
    path.write_bytes(make_pdf([["Alpha page", "first body"], ["Beta page"], ["Gamma page"]], "The Guide"))

    document = load_one(path)

    assert document.title == "The Guide"
    assert len(document.page_starts) == 3
    assert document.page_starts[0] == 0
    for page, word in enumerate(["Alpha", "Beta", "Gamma"], start=1):
        offset = document.text.index(word)
        assert document.text[document.page_starts[page - 1] :].startswith(word)
        assert document.page_at(offset) == page
    assert document.metadata["page_count"] == 3
    assert document.metadata["format"] == "pdf"


def test_pdf_without_metadata_title_uses_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "untitled.pdf"
    path.write_bytes(make_pdf([["Opening line", "more"]]))
    assert load_one(path).title == "Opening line"


# --------------------------------------------------------------------------- JSONL (BEIR)


def test_jsonl_gives_one_document_per_line_with_its_own_id(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    lines = [
        {"_id": "4983", "title": "Microstructural development", "text": "Alterations of the brain.", "metadata": {"x": 1}},
        {"id": 7, "title": "", "text": "No title here."},
    ]
    path.write_text(json.dumps(lines[0]) + "\n\n" + json.dumps(lines[1]) + "\n")

    first, second = load_file(path)

    assert (first.id, first.title) == ("4983", "Microstructural development")
    assert first.text == "Microstructural development\n\nAlterations of the brain."
    assert first.source == second.source == str(path.resolve())
    assert first.metadata["sha256"] == hashlib.sha256(
        b"Microstructural development\nAlterations of the brain."
    ).hexdigest()
    assert first.metadata["format"] == "jsonl"
    assert first.metadata["fields"] == {"metadata": {"x": 1}}
    assert (second.id, second.title, second.text) == ("7", "7", "No title here.")
    assert second.metadata["line"] == 3


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"_id": "a", "text": "x"}\n{"_id": "b", "text": \n', "line 2: not valid JSON"),
        ('{"_id": "a", "title": "t"}\n', 'line 1: no "text" string'),
        ('{"title": "t", "text": "x"}\n', 'line 1: no "_id" or "id"'),
        ('["a", "b"]\n', "line 1: not a JSON object"),
        ('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n', "line 2: duplicate id 'a' (first on line 1)"),
        ("\n\n", "empty file (no text)"),
    ],
)
def test_bad_jsonl_fails_the_whole_file_naming_the_line(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(content)
    assert load_error(path).reason == reason


# --------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    error = load_error(tmp_path / "gone.txt")
    assert str(error) == f"{tmp_path / 'gone.txt'}: no such file or directory"


def test_directory_with_a_file_suffix_is_not_a_file(tmp_path: Path) -> None:
    # Tests run as root, where chmod 000 does not stop reading; a folder named x.txt is a
    # real path that cannot be read as a file.
    (tmp_path / "x.txt").mkdir()
    assert load_error(tmp_path / "x.txt").reason == "is a directory, not a file"


def test_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    # A FIFO with no writer would block a plain open() forever: the loader must refuse it.
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    assert load_error(fifo).reason == "not a regular file (pipe, socket or device)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read files whatever their mode")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("secret\n")
    path.chmod(0)
    assert load_error(path).reason == "cannot read file (permission denied)"


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "data.xyz"
    path.write_text("x\n")
    assert load_error(path).reason == "unsupported type .xyz"


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.pdf", "empty.docx", "empty.jsonl"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert load_error(path).reason == "empty file (no text)"


@pytest.mark.parametrize("name", ["blank.txt", "blank.md", "blank.html"])
def test_whitespace_only_file_is_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(" \n\t\r\n   \n")
    assert load_error(path).reason == "empty file (no text)"


def test_html_without_text_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "scripts.html"
    path.write_text("<html><head><script>x()</script></head><body><nav>menu</nav></body></html>")
    assert load_error(path).reason == "empty file (no text)"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x02\x00>\x00",  # NUL bytes
        bytes(range(1, 32)) * 20 + b"some text",  # no NUL, but mostly control characters
    ],
)
def test_binary_data_named_txt(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "program.txt"
    path.write_bytes(raw)
    assert load_error(path).reason == "binary data, not text"


def test_corrupt_pdf_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.pdf"
    path.write_bytes(b"%PDF-1.4\n" + bytes((i * 37 + 11) % 256 for i in range(3000)))
    assert load_error(path).reason.startswith("corrupt or unreadable PDF (")


def test_corrupt_pdf_truncated(tmp_path: Path) -> None:
    whole = make_pdf([["Alpha"], ["Beta"]], "Cut")
    path = tmp_path / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 3])
    assert load_error(path).reason.startswith("corrupt or unreadable PDF (")


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "scan.pdf"
    writer.write(path)
    assert load_error(path).reason == "PDF has no extractable text (scanned image?)"


def test_corrupt_docx(tmp_path: Path) -> None:
    not_zip = tmp_path / "random.docx"
    not_zip.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    other_zip = tmp_path / "other.docx"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("hello.txt", "not a Word document")

    assert load_error(not_zip).reason.startswith("corrupt or unreadable DOCX")
    assert load_error(other_zip).reason.startswith("corrupt or unreadable DOCX")


# --------------------------------------------------------------------------- real corpus


def test_corpus_is_discovered_without_errors() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus not found: {CORPUS}")
    files, _, errors = discover_files([CORPUS])
    suffixes = {path.suffix for path in files}
    assert {".html", ".pdf", ".md", ".txt"} <= suffixes
    assert errors == []


def test_real_pdf_pages_map_phrases_to_their_page() -> None:
    document = load_one(corpus_file("pdf/python-tutorial-errors.pdf"))

    assert document.title == "8. Errors and Exceptions"
    assert len(document.page_starts) == document.metadata["page_count"] > 1
    assert document.page_at(document.text.index("8.1. Syntax Errors")) == 1
    assert document.page_at(document.text.index("8.5. Exception Chaining")) == 5
    assert document.page_at(document.text.index("8.10. Enriching Exceptions with Notes")) == 9


def test_real_sphinx_html_has_content_without_navigation() -> None:
    document = load_one(corpus_file("python-tutorial/errors.html"))

    assert document.title == "8. Errors and Exceptions"
    assert document.text.startswith("8. Errors and Exceptions\n\n")
    for chrome in ("Previous topic", "Table of Contents", "This Page", "Navigation", "¶", "Copyright"):
        assert chrome not in document.text
    headings = [section.heading for section in document.sections]
    assert "8. Errors and Exceptions > 8.3. Handling Exceptions" in headings
    for section in document.sections:
        assert document.text[section.start :].startswith(section.heading.split(" > ")[-1])


def test_real_markdown_heading_paths() -> None:
    document = load_one(corpus_file("nodejs-api/fs.md"))

    assert document.title == "File system"
    by_heading = {section.heading: section for section in document.sections}
    path = "File system > Notes > File paths > File URL paths > Platform-specific considerations"
    assert path in by_heading
    assert document.text[by_heading[path].start :].startswith("##### Platform-specific considerations")
    assert "File system > Promises API > Class: FileHandle > filehandle.close()" in by_heading
    assert "<!--" not in document.text


def test_real_news_text_loads() -> None:
    document = load_one(corpus_file("news/us-china-ai-safety-talks.txt"))

    assert document.title == "us-china-ai-safety-talks"  # first line is not followed by a blank line
    assert "Bessent" in document.text
    assert document.metadata["encoding"] == "utf-8"


def test_a_web_page_without_a_main_element_loses_its_chrome_and_keeps_its_code_whole(tmp_path: Path) -> None:
    """Written for issue 11: a long article page with a menu and a sidebar goes through trafilatura."""
    body = "The library parses dates written in many formats and returns timezone-aware values. " * 15
    page = tmp_path / "article.html"
    page.write_text(
        "<html><body><div class='site-menu'><a href='/'>Home</a> <a href='/blog'>Blog</a> <a href='/x'>Pricing</a></div>"
        f"<div class='content'><h1>Parsing dates</h1><p>{body}</p><p>Install it first:</p>"
        "<pre>pip install dateparser\ndateparser --help</pre><h2>Limits</h2>"
        f"<p>{body}</p></div><aside class='sidebar'><p>Subscribe to our newsletter for weekly tips</p></aside>"
        "</body></html>"
    )
    document = load_one(page)
    assert "Pricing" not in document.text and "newsletter" not in document.text
    assert "pip install dateparser\ndateparser --help" in document.text
    code = [document.text[b.start : b.end] for b in document.blocks if b.kind == "code"]
    assert code == ["pip install dateparser\ndateparser --help"]
    assert [s.heading for s in document.sections] == ["Parsing dates", "Parsing dates > Limits"]
