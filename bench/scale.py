"""How far one machine goes: indexes of 100k to 1M chunks, exact flat against approximate IVF, side by side.

    python bench/scale.py [--sizes 100000,300000,1000000] [--kinds flat,ivf] [--queries 1000] [--out DIR]

Embedding a million chunks here would take about ten hours, so the chunks are real ones and,
past those, synthetic copies of them. The real ones are every chunk of SciFact, SQuAD dev-a and
../shared/corpus, embedded once with the index's own embedder (int8 ONNX MiniLM) into a cached
index (``~/.cache/rag-assistant/scale-bench/real-index``). A copy is a real chunk's vector plus
Gaussian noise (sigma 0.035 a dimension, renormalised: cosine about 0.82 to its original, like a
chunk on the same topic) and the real text tagged ``[synthetic copy N]``; every row of the table
says how many of its chunks are synthetic. The queries are real: SciFact claims and SQuAD
questions, embedded by the loaded model as part of each timed search.

Per size, the store (SQLite: documents, chunks, vectors) is written once; then, per index type,
the derived files are rebuilt from it exactly as after a crash (``IndexStore.open`` with no
derived files: nothing re-embedded) and timed, and a fresh process opens the index with the
embedding model loaded and runs every query in dense, BM25 and hybrid mode (``Retriever.search``,
k=10, after 20 warm-up queries), reading its RSS after opening and after the queries. Recall@10
of each type's dense results is measured against exact search (brute force in numpy over the
stored vectors). Prints the table, saves ``DIR/scale.json`` and ``DIR/scale.png``; nothing here
asserts a speed. Run it at low priority (``nice -n 10``) on a shared machine and read the load
average it prints beside the figures.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
REAL_SOURCES = [
    SHARED / "evaldata" / "scifact" / "corpus.jsonl",
    SHARED / "evaldata" / "squad_dev_a" / "corpus.jsonl",
    SHARED / "corpus",
]
QUERY_FILES = [SHARED / "evaldata" / "scifact" / "queries.jsonl", SHARED / "evaldata" / "squad_dev_a" / "queries.jsonl"]
NOISE_SIGMA = 0.035
CHUNKS_PER_SYNTHETIC_DOCUMENT = 10
WARM_UP_QUERIES = 20
MODES = ("dense", "bm25", "hybrid")
# Named columns: the documents table has gained columns since (blocks), which take their defaults here.
INSERT_DOCUMENT = (
    "INSERT INTO documents (id, source, title, sha256, modified, metadata, text, page_starts, sections, added_at)"
)

console = Console()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-assistant" / "scale-bench"


# ---------------------------------------------------------------- the data


def real_index() -> Path:
    """The cached index of the real chunks (built, or brought up to date, by the project's own ingest)."""
    from index.ingest import add_to_index

    folder = cache_dir() / "real-index"
    missing = [str(path) for path in REAL_SOURCES if not path.exists()]
    if missing:
        raise SystemExit(f"benchmark data not found: {', '.join(missing)}")
    report = add_to_index(folder, REAL_SOURCES, show_progress=True)
    if report.chunks_embedded:
        console.print(f"embedded {report.chunks_embedded} real chunks in {report.seconds:.0f} s")
    return folder


def read_queries(limit: int) -> list[str]:
    """``limit`` real queries: SciFact's 300 claims and SQuAD questions taken in turn, then SQuAD's alone."""
    per_file = [[json.loads(line)["text"] for line in path.open(encoding="utf-8")] for path in QUERY_FILES]
    queries: list[str] = []
    for position in range(max(len(texts) for texts in per_file)):
        queries.extend(texts[position] for texts in per_file if position < len(texts))
    return queries[:limit]


def write_store(real: Path, size: int, folder: Path) -> dict[str, Any]:
    """A store of ``size`` chunks: the real ones first, then synthetic copies; derived files are left to the open."""
    from index.store import FORMAT_VERSION, MANIFEST_NAME, STORE_NAME, _connect, read_settings

    folder.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{real / STORE_NAME}?mode=ro", uri=True)
    real_chunks = source.execute(
        "SELECT c.id, c.document_id, c.text, c.start, c.end, c.page, c.heading, c.token_count, c.vector"
        " FROM chunks c ORDER BY c.rowid"
    ).fetchall()
    real_count = min(size, len(real_chunks))
    target = _connect(folder / STORE_NAME)
    target.execute("PRAGMA journal_mode = OFF")  # a benchmark's scratch copy: bulk speed over safety
    target.execute("PRAGMA synchronous = OFF")
    now = time.time()
    with target:
        used_documents = {row[1] for row in real_chunks[:real_count]}
        for document in source.execute(
            "SELECT id, source, title, sha256, modified, metadata, text, page_starts, sections, added_at FROM documents"
        ):
            if document[0] in used_documents:
                target.execute(f"{INSERT_DOCUMENT} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", document)
        target.executemany(
            "INSERT INTO chunks (id, document_id, text, start, end, page, heading, token_count, vector)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            real_chunks[:real_count],
        )
    rng = np.random.default_rng(0)
    real_vectors = np.vstack([np.frombuffer(row[8], np.float32) for row in real_chunks])
    for start in range(real_count, size, 20_000):
        numbers = np.arange(start, min(start + 20_000, size))
        originals = numbers % len(real_chunks)
        vectors = real_vectors[originals] + rng.normal(0, NOISE_SIGMA, (len(numbers), real_vectors.shape[1]))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        documents, chunks = [], []
        for first in range(0, len(numbers), CHUNKS_PER_SYNTHETIC_DOCUMENT):
            doc_id = f"synthetic-{numbers[first]}"
            texts, offset = [], 0
            for position in range(first, min(first + CHUNKS_PER_SYNTHETIC_DOCUMENT, len(numbers))):
                original = real_chunks[originals[position]]
                text = f"[synthetic copy {numbers[position]}] {original[2]}"
                chunks.append(
                    (f"{doc_id}-{position - first}", doc_id, text, offset, offset + len(text), None, original[6],
                     original[7], vectors[position].tobytes())
                )
                texts.append(text)
                offset += len(text) + 2
            documents.append(
                (doc_id, f"/synthetic/{doc_id}.txt", doc_id, doc_id, now, "{}", "\n\n".join(texts), "[]", "[]", now)
            )
        with target:
            target.executemany(f"{INSERT_DOCUMENT} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", documents)
            target.executemany(
                "INSERT INTO chunks (id, document_id, text, start, end, page, heading, token_count, vector)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                chunks,
            )
    with target:
        target.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', '1')")
        target.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('updated_at', ?)", (str(now),))
    target.execute("PRAGMA journal_mode = WAL")
    target.close()
    source.close()
    settings = read_settings(real)
    (folder / MANIFEST_NAME).write_text(
        json.dumps({"format_version": FORMAT_VERSION, "settings": settings.to_json(), "documents": 0, "chunks": size})
    )
    return {"real_chunks": real_count, "synthetic_chunks": size - real_count}


def set_kind(folder: Path, kind: str) -> None:
    """Record ``kind`` as the folder's vector index setting (the manifest is all a new open reads it from)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["settings"]["vector_index"] = kind
    (folder / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------- the measurements (each in its own process)


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure_rebuild(folder: str) -> dict[str, Any]:
    """Rebuild the derived files from SQLite as an open after a crash does, timing each structure."""
    from index.store import STORE_NAME, IndexStore, _connect, read_settings

    store = IndexStore(Path(folder), read_settings(folder), _connect(Path(folder) / STORE_NAME))
    generation = store.generation
    timings = {}
    started = time.perf_counter()
    store._rebuild_vectors()
    timings["vectors_build_s"] = time.perf_counter() - started
    started = time.perf_counter()
    store._rebuild_bm25()
    timings["bm25_build_s"] = time.perf_counter() - started
    # What _rebuild_derived records: without it, save() sees a view behind the store and rebuilds it all
    # again (the 1M rerun's "save" of 844 s was that second rebuild).
    store._view_generation = generation
    started = time.perf_counter()
    store.save()
    timings["save_s"] = time.perf_counter() - started
    timings["rebuild_s"] = timings["vectors_build_s"] + timings["bm25_build_s"] + timings["save_s"]
    timings["rebuild_peak_rss_mb"] = _rss_mb()[1]
    timings["vector_index"] = store.vector_index_kind
    return timings


def measure_vectors_only(folder: str) -> dict[str, Any]:
    """Rebuild only the vector index (the BM25 file is current), as an open does after a change of setting."""
    from index.store import IndexStore

    started = time.perf_counter()
    store = IndexStore.open(folder)
    return {"vectors_build_s": time.perf_counter() - started, "vector_index": store.vector_index_kind}


def measure_queries(folder: str, queries: list[str]) -> dict[str, Any]:
    """Open with the model loaded, then time every query in each mode; RSS after open and after the queries."""
    from rag.retrieval.retriever import Retriever

    started = time.perf_counter()
    retriever = Retriever.open(folder)
    for query in queries[:WARM_UP_QUERIES]:  # loads the model and touches the code paths, not the whole index
        retriever.search(query, k=10, mode="hybrid")
    result: dict[str, Any] = {"open_s": time.perf_counter() - started, "rss_open_mb": _rss_mb()[0]}
    for mode in MODES:
        latencies, cpu_times = [], []
        for query in queries:
            began, began_cpu = time.perf_counter(), time.process_time()
            retriever.search(query, k=10, mode=mode)
            latencies.append((time.perf_counter() - began) * 1000)
            cpu_times.append((time.process_time() - began_cpu) * 1000)  # what a shared machine does not inflate
        cuts = statistics.quantiles(latencies, n=100)
        result[f"{mode}_p50_ms"], result[f"{mode}_p95_ms"] = cuts[49], cuts[94]
        cpu_cuts = statistics.quantiles(cpu_times, n=100)
        result[f"{mode}_cpu_p50_ms"], result[f"{mode}_cpu_p95_ms"] = cpu_cuts[49], cpu_cuts[94]
    result["rss_mb"], result["peak_rss_mb"] = _rss_mb()
    vectors = retriever.embedder.embed(queries)
    result["dense_top10"] = [[row for row, _ in retriever.store.dense_hits(v, 10)] for v in vectors]
    result["dense_top100"] = [[row for row, _ in retriever.store.dense_hits(v, 100)] for v in vectors]
    np.save(Path(folder) / "query_vectors.npy", vectors)
    return result


def exact_top100(folder: str) -> list[list[int]]:
    """Exact inner-product top 100 of each query vector over every stored vector (numpy, in batches)."""
    from index.store import STORE_NAME

    queries = np.load(Path(folder) / "query_vectors.npy")
    db = sqlite3.connect(f"file:{Path(folder) / STORE_NAME}?mode=ro", uri=True)
    best_scores = np.full((len(queries), 100), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 100), dtype=np.int64)
    rows, blobs = [], []

    def fold() -> None:
        nonlocal best_scores, best_rows
        scores = queries @ np.vstack([np.frombuffer(b, np.float32) for b in blobs]).T
        all_scores = np.hstack([best_scores, scores])
        all_rows = np.hstack([best_rows, np.broadcast_to(np.array(rows), scores.shape)])
        top = np.argsort(-all_scores, axis=1, kind="stable")[:, :100]
        best_scores = np.take_along_axis(all_scores, top, 1)
        best_rows = np.take_along_axis(all_rows, top, 1)

    for row, blob in db.execute("SELECT rowid, vector FROM chunks ORDER BY rowid"):
        rows.append(row)
        blobs.append(blob)
        if len(rows) == 50_000:
            fold()
            rows, blobs = [], []
    if rows:
        fold()
    return best_rows.tolist()


def _in_subprocess(function: str, *args: Any) -> Any:
    """Run ``function(*args)`` of this module in a fresh Python process (clean RSS) and return its JSON result."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from bench import scale; "
        f"print('@@' + json.dumps(scale.{function}(*json.loads(sys.argv[2]))))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(REPO_ROOT), json.dumps(args)],
        capture_output=True, text=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if completed.returncode:
        raise RuntimeError(f"{function} failed:\n{completed.stderr[-3000:]}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith("@@"))
    return json.loads(line[2:])


def _files_mb(folder: Path) -> dict[str, float]:
    names = {"store.sqlite": "sqlite_mb", "vectors.faiss": "vectors_file_mb", "bm25.safetensors": "bm25_file_mb"}
    return {label: round((folder / name).stat().st_size / 1e6, 1) for name, label in names.items() if (folder / name).exists()}


# ---------------------------------------------------------------- the run


def run_size(real: Path, size: int, kinds: list[str], queries: list[str], work: Path) -> list[dict[str, Any]]:
    base = work / f"{size}-store"
    if not (base / "complete").exists():
        shutil.rmtree(base, ignore_errors=True)
        started = time.perf_counter()
        counts = write_store(real, size, base)
        (base / "complete").write_text(json.dumps(counts))
        console.print(f"{size:,}: wrote the store in {time.perf_counter() - started:.0f} s")
    counts = json.loads((base / "complete").read_text())
    rows: list[dict[str, Any]] = []
    exact: list[list[int]] | None = None
    bm25_from: Path | None = None
    first_build: dict[str, Any] = {}
    for kind in kinds:
        folder = work / f"{size}-{kind}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name in ("store.sqlite", "manifest.json"):
            shutil.copyfile(base / name, folder / name)
        set_kind(folder, kind)
        if bm25_from is None:
            built = first_build = _in_subprocess("measure_rebuild", str(folder))
            bm25_from = folder
        else:  # the same BM25 file serves every type: copy it, with a stamp that says so, and rebuild the vectors
            shutil.copyfile(bm25_from / "bm25.safetensors", folder / "bm25.safetensors")
            stamp = json.loads((bm25_from / "vectors.json").read_text())
            (folder / "vectors.json").write_text(json.dumps({**stamp, "vector_index": {"kind": kind}}))
            bm25 = {key: value for key, value in first_build.items() if key.startswith("bm25")}
            built = {**bm25, **_in_subprocess("measure_vectors_only", str(folder))}
            built["rebuild_s"] = built["vectors_build_s"] + built["bm25_build_s"]
        console.print(f"{size:,} {kind}: derived files rebuilt from SQLite in {built['rebuild_s']:.0f} s")
        measured = _in_subprocess("measure_queries", str(folder), queries)
        if exact is None:
            exact = _in_subprocess("exact_top100", str(folder))
        recall = float(np.mean([len(set(a) & set(b[:10])) / 10 for a, b in zip(measured.pop("dense_top10"), exact)]))
        recall_100 = float(np.mean([len(set(a) & set(b)) / 100 for a, b in zip(measured.pop("dense_top100"), exact)]))
        row = {
            "size": size,
            "index_type": kind,
            "synthetic": counts["synthetic_chunks"] > 0,
            "synthetic_chunks": counts["synthetic_chunks"],
            "real_chunks": counts["real_chunks"],
            "p50_ms": measured["hybrid_p50_ms"],
            "p95_ms": measured["hybrid_p95_ms"],
            "recall_at_10": recall,
            "recall_at_100": recall_100,
            **built,
            **measured,
            **_files_mb(folder),
            "load_average": os.getloadavg()[0],
        }
        rows.append(row)
        console.print(
            f"{size:,} {kind}: RSS {row['rss_mb']:.0f} MB, hybrid p50/p95 {row['p50_ms']:.1f}/{row['p95_ms']:.1f} ms,"
            f" recall@10 {recall:.3f}"
        )
    for kind in kinds:
        shutil.rmtree(work / f"{size}-{kind}", ignore_errors=True)  # the store stays, for a rerun
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Scale: one machine, flat against IVF (real queries; 'synthetic' = copies of real chunks)")
    columns = [
        ("chunks", lambda r: f"{r['size']:,}"),
        ("synthetic", lambda r: f"{r['synthetic_chunks']:,}"),
        ("index", lambda r: r["index_type"]),
        ("rebuild s (vec/bm25)", lambda r: f"{r['rebuild_s']:.0f} ({r['vectors_build_s']:.0f}/{r['bm25_build_s']:.0f})"),
        ("files MB (sqlite/vec/bm25)", lambda r: f"{r.get('sqlite_mb', 0):.0f}/{r.get('vectors_file_mb', 0):.0f}/{r.get('bm25_file_mb', 0):.0f}"),
        ("RSS MB open/1k q", lambda r: f"{r['rss_open_mb']:.0f}/{r['rss_mb']:.0f}"),
        ("dense p50/p95", lambda r: f"{r['dense_p50_ms']:.1f}/{r['dense_p95_ms']:.1f}"),
        ("bm25 p50/p95", lambda r: f"{r['bm25_p50_ms']:.1f}/{r['bm25_p95_ms']:.1f}"),
        ("hybrid p50/p95", lambda r: f"{r['p50_ms']:.1f}/{r['p95_ms']:.1f}"),
        ("hybrid CPU p50/p95", lambda r: f"{r.get('hybrid_cpu_p50_ms', 0):.1f}/{r.get('hybrid_cpu_p95_ms', 0):.1f}"),
        ("recall@10/100", lambda r: f"{r['recall_at_10']:.3f}/{r['recall_at_100']:.3f}"),
    ]
    for name, _ in columns:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*[cell(row) for _, cell in columns])
    console.print(table)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, memory) = plt.subplots(1, 2, figsize=(11, 4))
    for kind in sorted({row["index_type"] for row in rows}):
        mine = sorted((row for row in rows if row["index_type"] == kind), key=lambda row: row["size"])
        sizes = [row["size"] for row in mine]
        latency.plot(sizes, [row["p95_ms"] for row in mine], marker="o", label=f"{kind} hybrid p95")
        latency.plot(sizes, [row["dense_p95_ms"] for row in mine], marker=".", linestyle="--", label=f"{kind} dense p95")
        memory.plot(sizes, [row["rss_mb"] for row in mine], marker="o", label=f"{kind} RSS after the queries")
    latency.plot(sizes, [row["bm25_p95_ms"] for row in mine], marker=".", linestyle=":", label="BM25 p95")
    for axis, label in ((latency, "ms"), (memory, "MB")):
        axis.set_xscale("log")
        axis.set_xlabel("chunks (real + synthetic copies)")
        axis.set_ylabel(label)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    latency.set_title("warm query latency, wall time (model loaded; busy machine)")
    memory.set_title("process RSS, embedding model loaded")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(
    sizes: Annotated[str, typer.Option(help="Comma-separated chunk counts.")] = "100000,300000,1000000",
    kinds: Annotated[str, typer.Option(help="Vector index types to compare.")] = "flat,ivf",
    queries: Annotated[int, typer.Option(help="Real queries per mode (SciFact and SQuAD in turn).")] = 1000,
    out: Annotated[Path, typer.Option(help="Where scale.json and scale.png go.")] = REPO_ROOT / "bench" / "results",
    work: Annotated[Path | None, typer.Option(help="Scratch folder for the indexes (default: the cache).")] = None,
) -> None:
    """Build, open and query indexes of each size and type; print the table, save JSON and a plot."""
    work = work or cache_dir() / "work"
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    real = real_index()
    query_texts = read_queries(queries)
    kind_list = kinds.split(",")
    rows = []
    for size in sorted(int(s) for s in sizes.split(",")):
        rows.extend(run_size(real, size, kind_list, query_texts, work))
        (out / "scale.json").write_text(json.dumps(_report(rows, len(query_texts)), indent=2))  # after each size
    print_table(rows)
    plot(rows, out / "scale.png")
    console.print(f"saved {out / 'scale.json'} and {out / 'scale.png'}")


def _report(rows: list[dict[str, Any]], query_count: int) -> list[dict[str, Any]]:
    """The rows, each with the date, the machine and how the synthetic chunks were made."""
    context = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "queries": query_count,
        "noise_sigma": NOISE_SIGMA,
    }
    return [{**row, **context} for row in rows]


if __name__ == "__main__":
    typer.run(main)
