"""The query path imports only what a query needs (a cold `rag search` or `rag ask` must start quickly).

Each command runs in a fresh interpreter, in process, and reports which heavy packages it loaded; speed
itself is measured by ``bench/cold_start.py``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.ingest import add_to_index
from tests.conftest import REPO_ROOT

# Packages a query never needs: the torch embedder and its stack, the chat page, LangChain (only
# `as_runnable`, `as_langchain` and the LLM backends use it), the evaluation scorer, numba (via bm25s).
NEVER_ON_THE_QUERY_PATH = {
    "torch",
    "transformers",
    "sentence_transformers",
    "gradio",
    "langchain",
    "langchain_core",
    "langchain_text_splitters",
    "ranx",
    "numba",
    "bm25s",
    "ray",  # only `rag add --ray` imports it
    "pymilvus",  # only a milvus:// index imports it
    "milvus_lite",
}
# And what `rag status` does not need on top: it reads the manifest and SQLite only (index.manifest), so
# neither numpy (the BM25 and vector code) nor the stemmer is imported: a cold `rag status` is then mostly
# Python, typer and rich (0.47 -> 0.27 s, bench/cold_start.py).
NOT_FOR_STATUS = {"faiss", "onnxruntime", "scipy", "tokenizers", "numpy", "Stemmer", "index.store", "index.bm25"}

_RUN_AND_REPORT = """
import json, runpy, sys
sys.argv = ["rag", *json.loads(sys.argv[1])]
try:
    runpy.run_module("rag.cli", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} | {n for n in sys.modules if n.startswith("index.")})))
"""


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index_dir = tmp_path_factory.mktemp("demo") / "index"
    add_to_index(index_dir, [REPO_ROOT / "docs"], show_progress=False)  # the default embedder: int8 ONNX
    return index_dir


def _modules_loaded_by(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, json.dumps(list(args))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_search_imports_no_torch_langchain_or_other_heavy_package(demo_index: Path) -> None:
    loaded = _modules_loaded_by("search", "how do I add files", "--index", str(demo_index))
    assert "onnxruntime" in loaded and "faiss" in loaded  # the check sees what a search does load
    assert not loaded & NEVER_ON_THE_QUERY_PATH


def test_ask_imports_no_torch_langchain_or_other_heavy_package(demo_index: Path) -> None:
    loaded = _modules_loaded_by("ask", "How do I add files?", "--index", str(demo_index))
    assert "onnxruntime" in loaded and "rag" in loaded
    assert not loaded & NEVER_ON_THE_QUERY_PATH


def test_status_loads_neither_the_model_nor_the_vectors(demo_index: Path) -> None:
    loaded = _modules_loaded_by("status", "--index", str(demo_index))
    assert not loaded & (NEVER_ON_THE_QUERY_PATH | NOT_FOR_STATUS)


@pytest.mark.slow  # builds a torch index and starts three interpreters: 23 s on the busy machine
def test_a_torch_index_loads_torch_only_when_it_embeds_a_query(demo_index: Path, tmp_path: Path) -> None:
    torch_index = tmp_path / "torch"
    add_to_index(torch_index, [REPO_ROOT / "docs" / "adding-documents.md"], embedder_kind="torch", show_progress=False)
    assert "torch" not in _modules_loaded_by("search", "add files", "--mode", "bm25", "--index", str(torch_index))
    assert "torch" in _modules_loaded_by("search", "add files", "--index", str(torch_index))
