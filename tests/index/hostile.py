"""A seeded generator of hostile files for `rag add` (issue 10): what a careless or malicious folder holds.

``write_cases(folder, seed, count)`` writes ``count`` files (and links, pipes, odd names) into
``folder`` and returns what each one is and what ``rag add`` may do with it. The same seed always
writes the same bytes. Kinds (``KINDS``): random bytes under every supported suffix, truncated and
bit-flipped PDFs and DOCX files, deeply nested HTML and JSON, huge lines, zip bombs, entity bombs,
non-UTF-8 and odd file names, symbolic links (out of the folder, broken, looping), a named pipe,
jsonl records with hostile ids, and good files that must always be indexed.

Sizes stay small (at most a few MB a file) so a run of hundreds of cases takes seconds to read;
``bench/hostile_inputs.py`` runs the issue's full-size inputs one at a time.
"""

from __future__ import annotations

import io
import json
import os
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docx

from tests.index.test_loaders import make_pdf

INDEXED = "indexed"
FAILED = "failed"
SKIPPED = "skipped"
ANY = "any"  # indexed or failed: either is right, a traceback is not


@dataclass(frozen=True)
class Case:
    """One generated file: where it is, what kind, what ``rag add`` must report for it, and for a good
    file a word that only it contains (to search for)."""

    path: Path
    kind: str
    expect: str
    marker: str = ""


WORDS = (
    "river mountain copper violin harbor lantern orchard glacier meadow falcon engine quartz canyon pepper "
    "saddle timber marble velvet comet island walnut beacon thunder prairie"
).split()


class _Writer:
    def __init__(self, folder: Path, rng: random.Random, outside: Path) -> None:
        self.folder = folder
        self.rng = rng
        self.outside = outside
        self.number = 0

    def name(self, stem: str, suffix: str) -> Path:
        self.number += 1
        return self.folder / f"{self.number:04d}-{stem}{suffix}"

    def sentence(self) -> str:
        words = self.rng.sample(WORDS, 6)
        return f"The {words[0]} near the {words[1]} keeps a {words[2]} and a {words[3]} for the {words[4]} {words[5]}."

    def random_bytes(self, low: int = 0, high: int = 4096) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))


def _good(w: _Writer) -> Case:
    marker = f"fuzzmarker{w.number + 1:04d}x"
    suffix = w.rng.choice([".txt", ".md", ".html", ".docx", ".pdf"])
    text = f"{w.sentence()} The code word is {marker}. {w.sentence()}"
    path = w.name("good", suffix)
    if suffix == ".html":
        path.write_text(f"<html><head><title>Good {marker}</title></head><body><p>{text}</p></body></html>")
    elif suffix == ".docx":
        document = docx.Document()
        document.add_paragraph(text)
        document.save(path)
    elif suffix == ".pdf":
        path.write_bytes(make_pdf([[w.sentence(), f"The code word is {marker}."]]))
    else:
        path.write_text(f"# Good\n\n{text}\n" if suffix == ".md" else text)
    return Case(path, "good", INDEXED, marker)


def _random_bytes(w: _Writer) -> Case:
    suffix = w.rng.choice([".txt", ".md", ".html", ".pdf", ".docx", ".jsonl"])
    path = w.name("random", suffix)
    path.write_bytes(w.random_bytes(0, 8192))
    return Case(path, "random bytes", ANY)


def _tiny_random(w: _Writer) -> Case:
    path = w.name("tiny", w.rng.choice([".txt", ".md"]))
    path.write_bytes(w.random_bytes(1, 7))
    return Case(path, "1 to 7 random bytes", ANY)


def _truncated_pdf(w: _Writer) -> Case:
    whole = make_pdf([[w.sentence()], [w.sentence()]], title="Truncated")
    path = w.name("truncated", ".pdf")
    path.write_bytes(whole[: w.rng.randint(1, len(whole) - 1)])
    return Case(path, "truncated PDF", ANY)


def _flipped(w: _Writer, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(w.rng.randint(1, 20)):
        data[w.rng.randrange(len(data))] = w.rng.randrange(256)
    return bytes(data)


def _damaged_pdf(w: _Writer) -> Case:
    path = w.name("flipped", ".pdf")
    path.write_bytes(_flipped(w, make_pdf([[w.sentence()], [w.sentence()]])))
    return Case(path, "bit-flipped PDF", ANY)


def _docx_bytes(text: str) -> bytes:
    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph(text)
    document.save(buffer)
    return buffer.getvalue()


def _damaged_docx(w: _Writer) -> Case:
    data = _docx_bytes(w.sentence())
    path = w.name("damaged", ".docx")
    path.write_bytes(_flipped(w, data) if w.rng.random() < 0.5 else data[: w.rng.randint(1, len(data) - 1)])
    return Case(path, "damaged DOCX", ANY)


def _zip_bomb(w: _Writer) -> Case:
    """A DOCX whose members unpack to far more than its bytes (600 MB of zeros in about 600 kB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_docx_bytes(w.sentence()))) as source, zipfile.ZipFile(buffer, "w") as target:
        for member in source.infolist():
            target.writestr(member, source.read(member.filename))
        with target.open("word/media/bomb.bin", "w", force_zip64=True) as bomb:
            block = b"\0" * (1 << 20)
            for _ in range(600):
                bomb.write(block)
    path = w.name("zipbomb", ".docx")
    path.write_bytes(buffer.getvalue())
    return Case(path, "zip bomb", FAILED)


def _entity_bomb(w: _Writer) -> Case:
    """Billion laughs: in a DOCX's XML (a DTD the parser must not expand) or as HTML entity soup."""
    if w.rng.random() < 0.5:
        laughs = '<!DOCTYPE w [<!ENTITY a "lol">' + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(_docx_bytes("placeholder"))) as source, zipfile.ZipFile(buffer, "w") as target:
            for member in source.infolist():
                data = source.read(member.filename)
                if member.filename == "word/document.xml":
                    head, _, rest = data.decode().partition("?>")
                    data = (head + "?>" + laughs + "]>" + rest.replace("placeholder", "&j;")).encode()
                target.writestr(member, data)
        path = w.name("laughs", ".docx")
        path.write_bytes(buffer.getvalue())
    else:
        path = w.name("entities", ".html")
        path.write_text("<p>" + "&amp;&lt;&#x1F600;&nosuch;" * w.rng.randint(10_000, 100_000) + "</p>")
    return Case(path, "entity bomb", ANY)


def _nested_html(w: _Writer) -> Case:
    tag = w.rng.choice(["div", "span", "b", "blockquote", "li", "table"])
    depth = w.rng.choice([1_000, 5_000, 20_000, 60_000])
    close = "" if w.rng.random() < 0.5 else f"</{tag}>" * depth
    path = w.name(f"nested-{tag}", ".html")
    path.write_text(f"<html><body>{f'<{tag}>' * depth}<p>{w.sentence()}</p>{close}</body></html>")
    return Case(path, "nested HTML", INDEXED)


def _nested_json(w: _Writer) -> Case:
    depth = w.rng.choice([2_000, 20_000, 100_000])
    opener, closer = ("[", "]") if w.rng.random() < 0.5 else ('{"a":', "}")
    path = w.name("nested", ".jsonl")
    path.write_text(json.dumps({"_id": "ok", "text": w.sentence()}) + "\n" + opener * depth + "1" + closer * depth + "\n")
    return Case(path, "nested JSON", FAILED)


def _hostile_jsonl(w: _Writer) -> Case:
    choice = w.rng.randrange(5)
    path = w.name("records", ".jsonl")
    if choice == 0:  # a 5,000-digit integer id
        line = '{"_id": ' + "9" * w.rng.randint(4_400, 6_000) + ', "text": "' + w.sentence() + '"}'
    elif choice == 1:  # lone surrogates
        line = '{"_id": "s\\ud800", "title": "\\udfff", "text": "broken \\ud83d ' + w.sentence() + '"}'
    elif choice == 2:  # one huge record
        line = json.dumps({"_id": f"huge{w.number}", "text": " ".join(w.rng.choices(WORDS, k=150_000))})
    elif choice == 3:  # not an object, then a float id
        line = '["a", "b"]\n{"_id": 1e999, "text": "x"}'
    else:  # ids that are paths of other files
        line = json.dumps({"_id": str(w.folder / "0001-good.txt"), "text": w.sentence()})
    path.write_text(line + "\n")
    return Case(path, "hostile jsonl", ANY)


def _huge_line(w: _Writer) -> Case:
    choice = w.rng.randrange(4)
    path = w.name("huge", ".md" if choice == 3 else ".txt")
    if choice == 0:  # one 300,000-character "word"
        path.write_text(w.rng.choice("abcdefgh") * 300_000)
    elif choice == 1:  # a 3 MB line without a space
        path.write_bytes(bytes(w.rng.choice(b"abcdefghij") for _ in range(1000)) * 3_000)
    elif choice == 2:  # 2 MB of words on one line
        path.write_text(" ".join(w.rng.choices(WORDS, k=300_000)))
    else:  # a Markdown file of 20,000 headings
        path.write_text("".join(f"## Heading {n}\n\n" for n in range(20_000)))
    return Case(path, "huge line", ANY)


def _odd_name(w: _Writer) -> Case:
    marker = f"fuzzmarker{w.number + 1:04d}x"
    w.number += 1
    stems = [
        os.fsdecode(b"caf\xe9-" + str(w.number).encode()),
        os.fsdecode(b"\xff\xfe" + str(w.number).encode()),
        f"{w.number}-" + "n" * 200,
        f"{w.number} with spaces and 'quotes'",
        f"{w.number}-\u202eevil\u202c",
        f"-{w.number}-dash",
        f"{w.number}-line\nbreak",
        f"{w.number}.tar.gz",
    ]
    stem = w.rng.choice(stems)
    path = w.folder / f"{stem}{w.rng.choice(['.txt', '.MD', '.Txt'])}"
    path.write_text(f"{w.sentence()} The code word is {marker}.")
    return Case(path, "odd name", INDEXED, marker)


def _link(w: _Writer) -> Case:
    choice = w.rng.randrange(4)
    if choice == 0:  # to a file outside the folder
        target = w.outside / f"secret-{w.number}.txt"
        target.write_text("root:x:0:0:secret")
        path = w.name("link-out", ".txt")
        path.symlink_to(target)
        return Case(path, "symlink out of the folder", SKIPPED)
    if choice == 1:  # broken
        path = w.name("link-broken", ".txt")
        path.symlink_to(w.folder / "does-not-exist.txt")
        return Case(path, "broken symlink", FAILED)
    if choice == 2:  # a folder link that loops
        path = w.name("link-loop", "")
        path.symlink_to(w.folder)
        return Case(path, "looping folder link", SKIPPED)
    path = w.name("pipe", ".txt")  # a named pipe: reading it would block forever
    os.mkfifo(path)
    return Case(path, "named pipe", SKIPPED)


def _empty(w: _Writer) -> Case:
    suffix = w.rng.choice([".txt", ".md", ".html", ".pdf", ".docx", ".jsonl"])
    path = w.name("empty", suffix)
    path.write_bytes(w.rng.choice([b"", b" \n\t\n", b"\xef\xbb\xbf"] + ([b"<html><body> </body></html>"] if suffix == ".html" else [])))
    return Case(path, "empty", FAILED)


def _legacy_encoding(w: _Writer) -> Case:
    marker = f"fuzzmarker{w.number + 1:04d}x"
    encoding = w.rng.choice(["cp1252", "utf-16", "latin-1", "utf-8-sig"])
    path = w.name(f"enc-{encoding}", ".txt")
    path.write_bytes(f"Caf\u00e9 cr\u00e8me. {w.sentence()} The code word is {marker}.".encode(encoding))
    return Case(path, "legacy encoding", INDEXED, marker)


KINDS: dict[str, tuple[Callable[[_Writer], Case], int]] = {
    # kind: (writer, weight)
    "good": (_good, 12),
    "random bytes": (_random_bytes, 14),
    "1 to 7 random bytes": (_tiny_random, 4),
    "truncated PDF": (_truncated_pdf, 6),
    "bit-flipped PDF": (_damaged_pdf, 4),
    "damaged DOCX": (_damaged_docx, 6),
    "zip bomb": (_zip_bomb, 1),
    "entity bomb": (_entity_bomb, 3),
    "nested HTML": (_nested_html, 6),
    "nested JSON": (_nested_json, 4),
    "hostile jsonl": (_hostile_jsonl, 6),
    "huge line": (_huge_line, 3),
    "odd name": (_odd_name, 8),
    "link": (_link, 5),
    "empty": (_empty, 4),
    "legacy encoding": (_legacy_encoding, 4),
}


def write_cases(folder: Path, outside: Path, seed: int, count: int) -> list[Case]:
    """Write ``count`` hostile files into ``folder`` (files that links point out to go in ``outside``).

    Every kind appears at least once when ``count`` allows; the rest are drawn by weight.
    """
    folder.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    writer = _Writer(folder, rng, outside)
    kinds = list(KINDS)
    order = kinds[:count] + rng.choices(kinds, weights=[KINDS[k][1] for k in kinds], k=max(0, count - len(kinds)))
    return [KINDS[kind][0](writer) for kind in order]


RUN_MEASURED = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:])
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"peak_rss_kb={peak_kb}", file=sys.stderr)
sys.exit(result.returncode)
"""


def run_measured(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    """Run ``command`` in a child process; returns (exit code, stderr, the child's peak RSS in MB).

    A wrapper process runs it, so the peak is that child's alone (RUSAGE_CHILDREN of the test
    process would include every earlier child).
    """
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", RUN_MEASURED, *command],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    stderr, _, last = result.stderr.rstrip("\n").rpartition("\n")
    if not last.startswith("peak_rss_kb="):
        stderr, last = result.stderr, "peak_rss_kb=0"
    return result.returncode, stderr, int(last.split("=")[1]) / 1024
