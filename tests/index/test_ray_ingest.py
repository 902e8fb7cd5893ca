"""`rag add --ray`: Ray Data's actors load, chunk and embed; the index is the one the single-process path builds.

Each run starts its own local Ray through the real CLI, as a user's would, and stops it afterwards.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, SHARED_CORPUS, rag_command, require_shared

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason='Ray is not installed: pip install -e ".[ray]"'
)


def _chunks(index_dir: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Every chunk of a local index folder: id -> (text, vector)."""
    with sqlite3.connect(f"file:{index_dir / 'store.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, text, vector FROM chunks").fetchall()
    return {chunk_id: (text, np.frombuffer(vector, dtype=np.float32)) for chunk_id, text, vector in rows}


@needs_ray
@pytest.mark.slow  # embeds ../shared/corpus on a local Ray: about 2 minutes on the busy 2-core machine
def test_ray_gives_the_chunks_and_vectors_of_the_single_process_path(shared_corpus_index: Path, tmp_path: Path) -> None:
    require_shared(SHARED_CORPUS)
    ray_index = tmp_path / "ray"
    result = rag_command("add", str(SHARED_CORPUS), "--index", str(ray_index), "--ray", "--quiet")
    assert "failed 0" in result.stderr, result.stderr

    single, distributed = _chunks(shared_corpus_index), _chunks(ray_index)
    assert len(single) > 1000  # the corpus, not a fragment of it
    assert distributed.keys() == single.keys()
    assert all(distributed[chunk_id][0] == text for chunk_id, (text, _) in single.items())
    largest_difference = max(float(np.abs(distributed[i][1] - vector).max()) for i, (_, vector) in single.items())
    assert largest_difference <= 1e-5

    again = rag_command("add", str(SHARED_CORPUS), "--index", str(ray_index), "--ray", "--quiet")
    files = sum(1 for path in SHARED_CORPUS.rglob("*") if path.is_file())
    assert f"unchanged {files}," in again.stderr and "; 0 chunks embedded" in again.stderr, again.stderr


@needs_ray
@pytest.mark.slow  # starts a local Ray (about 20 s here) and embeds two small files
@pytest.mark.parametrize("store", ["folder", "milvus"])
def test_a_bad_file_under_ray_gets_its_failed_line_and_the_rest_is_indexed(store: str, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "harbour.txt").write_text("The council voted on Tuesday to rebuild the old lighthouse on the north pier.")
    (folder / "notes.md").write_text("# Budget\n\nThe rebuild will cost about two million euros.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    (folder / "empty.txt").write_text("")
    if store == "milvus":
        pytest.importorskip("pymilvus", reason='the Milvus store needs the milvus extra: pip install -e ".[milvus]"')
    index = f"milvus://{tmp_path / 'index.db'}" if store == "milvus" else str(tmp_path / "index")

    result = rag_command("add", str(folder), "--index", index, "--ray", "--quiet")

    failed = [line for line in result.stderr.splitlines() if line.startswith("failed")]
    assert len(failed) == 2, result.stderr
    assert any("broken.pdf" in line for line in failed) and any("empty.txt" in line for line in failed)
    assert "added 2," in result.stderr
    status = json.loads(rag_command("status", "--index", index, "--json").stdout)
    assert status["documents"] == 2
    hits = json.loads(rag_command("search", "lighthouse rebuild", "--index", index, "--json").stdout)
    assert hits and hits[0]["source"].endswith("harbour.txt")


_WITHOUT_RAY = """
import runpy, sys
sys.modules["ray"] = None  # as if Ray were not installed: `import ray` raises ImportError
sys.argv = ["rag", "add", sys.argv[1], "--index", sys.argv[2], "--ray"]
runpy.run_module("rag.cli", run_name="__main__")
"""


def test_without_ray_installed_the_message_names_the_extra(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("A note.")
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_RAY, str(note), str(tmp_path / "index")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert result.returncode == 1
    assert '".[ray]"' in result.stderr, result.stderr
    assert not (tmp_path / "index").exists()  # refused before anything was done


@needs_ray
def test_a_ray_client_address_is_refused_before_anything_is_done(tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("A note.")
    index_dir = tmp_path / "index"
    result = rag_command(
        "add", str(note), "--index", str(index_dir), "--ray", "--ray-address", "ray://127.0.0.1:10001", check=False
    )
    assert result.returncode == 1
    assert "Ray Data does not run through Ray Client" in result.stderr and "--ray-address auto" in result.stderr
    assert not index_dir.exists()


def test_ray_address_without_ray_is_refused(tmp_path: Path) -> None:
    result = rag_command("add", str(tmp_path), "--index", str(tmp_path / "index"), "--ray-address", "auto", check=False)
    assert result.returncode == 1 and "--ray-address goes with --ray" in result.stderr
