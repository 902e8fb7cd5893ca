"""Fixtures shared by the whole suite: where ../shared is, the packaged model, a built corpus index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may download a model at run time
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SHARED_CORPUS = SHARED / "corpus"
EVALDATA = SHARED / "evaldata"


def require_shared(path: Path) -> Path:
    """Skip the calling test when ``../shared`` data is absent (a user's clone has none)."""
    if not path.exists():
        pytest.skip(f"{path} not found: this test needs the ../shared data beside the repository")
    return path


def rag_command(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the real ``rag`` CLI in a subprocess, as a user would."""
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        check=False,  # the exit code is checked below, with the output in the message
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"rag {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2 with the default embedder (int8 ONNX), loaded once for the session."""
    from index.embedding import load_embedder

    model = load_embedder()
    model.embed(["warm up"])
    return model


@pytest.fixture(scope="session")
def shared_corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of ../shared/corpus built once per session with ``rag add`` (about a minute).

    Tests that write to an index must copy it first (``copy_index``).
    """
    require_shared(SHARED_CORPUS)
    index_dir = tmp_path_factory.mktemp("shared-corpus") / "index"
    rag_command("add", str(SHARED_CORPUS), "--index", str(index_dir), "--quiet")
    return index_dir


def copy_index(index_dir: Path, destination: Path) -> Path:
    """A private copy of an index folder, for tests that change it."""
    shutil.copytree(index_dir, destination)
    return destination


@pytest.fixture(scope="session")
def user_guide_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the user guide in docs/ (the demo corpus of the README), built once per session (seconds)."""
    from rag import Retriever

    index_dir = tmp_path_factory.mktemp("user-guide") / "index"
    Retriever.build([REPO_ROOT / "docs"], index_dir)
    return index_dir
