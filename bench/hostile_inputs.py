"""Time and peak memory of `rag add` on each hostile input of issue 10, before and after the fixes.

    python bench/hostile_inputs.py [--before 774714e] [--timeout 300] [--rss-cap-mb 6000]
                                   [--only NAME ...] [--out bench/results/hostile_inputs.json]

Writes the issue's inputs at full size into a temporary folder (a 50 MB one-line text file, 50 MB of
words, a 300,000-character word, a DOCX of 3 million empty paragraphs, a 1 MB one-line jsonl record,
20,000 Markdown headings, 10,000 nested divs, 100,000 nested spans, 50,000 unclosed bold tags, a
5,000-digit jsonl id, 100,000 nested brackets, a non-UTF-8 file name), then runs `rag add FILE` on
each, alone, into a fresh index, in a fresh process, with the code of ``--before`` (a git revision,
extracted with `git archive`; default: main before issue 10) and with this working tree; the 50 MB
files also once with ``--max-file-mb 100``, so they are read and chunked instead of refused for
their size. A run is killed past ``--timeout`` seconds or ``--rss-cap-mb`` of memory (the machine
is shared). Prints a table and saves JSON (with ``--only``, the rows of those inputs are replaced in
an existing ``--out`` and the others kept). Nothing here asserts anything.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000


def _docx_of_empty_paragraphs(path: Path, paragraphs: int) -> None:
    """A real DOCX (python-docx's template) whose body is ``paragraphs`` empty paragraphs: about 300 kB zipped."""
    import docx

    template = io.BytesIO()
    docx.Document().save(template)
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member.filename)
            if member.filename == "word/document.xml":
                head, body, tail = data.decode().partition("<w:body>")
                data = (head + body + "<w:p/>" * paragraphs + tail).encode()
            target.writestr(member.filename, data)


def _inputs(folder: Path) -> dict[str, Callable[[], Path]]:
    """name -> a function that writes the input and returns its path (written only when run)."""

    def write(name: str, data: str | bytes) -> Path:
        path = folder / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
        return path

    def words(total_bytes: int) -> str:
        vocabulary = "river mountain copper violin harbor lantern orchard glacier meadow falcon".split()
        line = " ".join(vocabulary[n % 10] + str(n % 97) for n in range(total_bytes // 9))
        return line[:total_bytes]

    def docx_file() -> Path:
        path = folder / "empty-paragraphs.docx"
        _docx_of_empty_paragraphs(path, 3_000_000)
        return path

    return {
        "50 MB one-line text": lambda: write("one-line.txt", b"abcdefghij" * (5 * MB)),
        "50 MB of words": lambda: write("words.txt", words(50 * MB)),
        "300,000-character word": lambda: write("word.txt", "Before. " + "x" * 300_000 + " After."),
        "DOCX, 3 million empty paragraphs": docx_file,
        "1 MB one-line jsonl record": lambda: write(
            "record.jsonl", json.dumps({"_id": "r1", "title": "One record", "text": words(MB)}) + "\n"
        ),
        "20,000 Markdown headings": lambda: write("headings.md", "".join(f"## Heading {n}\n\n" for n in range(20_000))),
        "10,000 nested divs": lambda: write("divs.html", "<body>" + "<div>" * 10_000 + "<p>Deep text.</p>"),
        "100,000 nested spans": lambda: write("spans.html", "<p>" + "<span>" * 100_000 + "x" + "</span>" * 100_000),
        "50,000 unclosed <b>": lambda: write("bold.html", "<p>" + "<b>word " * 50_000),
        "5,000-digit jsonl id": lambda: write("id.jsonl", '{"_id": ' + "7" * 5_000 + ', "text": "A long id."}\n'),
        "100,000 nested brackets": lambda: write("nested.jsonl", "[" * 100_000 + "]" * 100_000 + "\n"),
        "non-UTF-8 file name": lambda: write(os.fsdecode(b"caf\xe9.txt"), "The caf\u00e9 opens at eight."),
    }


RAISED = {"50 MB one-line text", "50 MB of words"}


def _checkout(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run(code: Path, path: Path, index_dir: Path, timeout: float, rss_cap_mb: float, extra: list[str]) -> dict:
    """Run `rag add` from the code in ``code``; its outcome, seconds and peak RSS.

    The peak is the child's own VmHWM, read every 20 ms: the ``ru_maxrss`` that ``wait4`` reports
    starts from the parent's peak (the child is spawned with vfork, and exec keeps the larger of the
    two), so after this script had built a 50 MB input in memory every child seemed to use 468 MB.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "add", str(path), "--index", str(index_dir), "--quiet", *extra],
        cwd=code,  # `python -m` puts the working directory first on sys.path: that code runs
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started = time.perf_counter()
    killed = ""
    peak_mb = 0.0
    stderr_chunks: list[bytes] = []
    os.set_blocking(process.stderr.fileno(), False)
    while True:
        pid, status, _ = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        stderr_chunks.append(process.stderr.read() or b"")
        seconds = time.perf_counter() - started
        rss_mb, high_water_mb = _memory_mb(process.pid)
        peak_mb = max(peak_mb, high_water_mb)
        if not killed and (seconds > timeout or rss_mb > rss_cap_mb):
            killed = f"killed at {seconds:.0f} s" if seconds > timeout else f"killed at {rss_mb:,.0f} MB"
            process.send_signal(signal.SIGKILL)
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr_chunks.append(process.stderr.read() or b"")
    stderr = b"".join(stderr_chunks).decode(errors="replace")
    return {
        "outcome": killed or _outcome(stderr, process.returncode),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "exit_code": process.returncode,
    }


def _memory_mb(pid: int) -> tuple[float, float]:
    """(resident, high-water resident) memory of a live process, in MB."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":")[0] + ":"
            if key in values:
                values[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return values["VmRSS:"], values["VmHWM:"]


def _outcome(stderr: str, code: int) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr:
        return "traceback: " + (lines[-1][:90] if lines else "")
    failed = [line for line in lines if line.startswith("failed")]
    summary = next((line for line in reversed(lines) if "added " in line), "")
    if failed:
        return "failed: " + failed[0].split(": ", 1)[-1][:90]
    counts = re.search(r"added (\d+),.* failed (\d+); (\d+) chunks embedded", summary)
    if counts:
        return f"added {counts[1]} ({counts[3]} chunks)"
    return f"exit {code}: " + (lines[-1][:90] if lines else "")


def main(
    before: Annotated[str, typer.Option(help="Git revision to measure as 'before' ('' to skip).")] = "774714e",
    timeout: Annotated[float, typer.Option(help="Kill a run after this many seconds.")] = 300,
    rss_cap_mb: Annotated[float, typer.Option(help="Kill a run above this resident memory.")] = 6_000,
    only: Annotated[list[str] | None, typer.Option(help="Run only these inputs (by name).")] = None,
    out: Annotated[Path, typer.Option(help="Where to save the JSON.")] = REPO_ROOT / "bench" / "results" / "hostile_inputs.json",
) -> None:
    rows = []
    console = Console(width=200)
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        versions = {"after": REPO_ROOT}
        if before:
            versions = {"before": _checkout(before, scratch_dir / "before"), **versions}
        inputs = _inputs(scratch_dir)
        for name, make in inputs.items():
            if only and name not in only:
                continue
            path = make()
            runs = [(label, code, []) for label, code in versions.items()]
            if name in RAISED:
                runs.append(("after, --max-file-mb 100", REPO_ROOT, ["--max-file-mb", "100"]))
            for label, code, extra in runs:
                index_dir = scratch_dir / f"index-{len(rows)}"
                row = {"input": name, "bytes": path.stat().st_size, "code": label, **_run(code, path, index_dir, timeout, rss_cap_mb, extra)}
                rows.append(row)
                console.print(f"{name:<34} {label:<26} {row['seconds']:>7.1f} s {row['peak_rss_mb']:>6} MB  {row['outcome']}", markup=False)
            path.unlink()
    if only and out.is_file():
        # A partial run replaces its rows in the saved report and keeps the others.
        kept = [row for row in json.loads(out.read_text())["runs"] if row["input"] not in only]
        rows = sorted(kept + rows, key=lambda row: list(_inputs(Path())).index(row["input"]))
    load = os.getloadavg()[0]
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_1min": load,
        "before": before,
        "timeout_s": timeout,
        "rss_cap_mb": rss_cap_mb,
        "runs": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    table = Table(title=f"rag add of each hostile input, {report['machine']}, load {load:.1f}, {report['date']}")
    for column in ("input", "size", "code", "seconds", "peak RSS MB", "outcome"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["input"], f"{row['bytes'] / MB:.2f} MB", row["code"], f"{row['seconds']:.1f}", str(row["peak_rss_mb"]), row["outcome"])
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
