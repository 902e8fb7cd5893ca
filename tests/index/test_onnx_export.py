"""The ONNX export and int8 quantisation from a clean cache, the cache key, and two processes exporting at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.embedding import load_embedder, resolve_model_folder
from index.onnx_export import FP32_NAME, INT8_NAME, exported_model, model_fingerprint, onnx_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[2]

_EMBED_IN_A_FRESH_PROCESS = """
import sys
from index.embedding import load_embedder
vector = load_embedder().embed_query("how are retries configured?")
print(vector.shape[0], "torch" in sys.modules)
"""


@pytest.fixture
def clean_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _run_fresh_process(cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _EMBED_IN_A_FRESH_PROCESS],
        cwd=REPO_ROOT,
        env={**os.environ, "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_first_use_exports_and_quantises_into_an_empty_cache_then_reuses_it(clean_cache: Path) -> None:
    folder = resolve_model_folder("all-MiniLM-L6-v2")
    int8 = exported_model(folder, "int8")
    assert int8.name == INT8_NAME and int8.parent.parent == onnx_cache_dir()
    assert int8.parent.name.startswith(model_fingerprint(folder)[:16])
    fp32 = int8.parent / FP32_NAME
    assert fp32.is_file() and 0.4 < int8.stat().st_size / fp32.stat().st_size < 0.8  # most weights in int8
    provenance = json.loads((int8.parent / "export.json").read_text())
    assert provenance["source"] == str(folder) and provenance["quantization"]["per_channel"] is True
    assert not [p.name for p in int8.parent.iterdir() if ".tmp-" in p.name]  # no temporary file left
    written = int8.stat().st_mtime_ns
    # A second process finds the files and neither re-exports nor imports torch.
    process = _run_fresh_process(clean_cache)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stdout.split() == ["384", "False"]
    assert "exporting" not in stderr
    assert int8.stat().st_mtime_ns == written


@pytest.mark.slow
def test_two_processes_exporting_at_once_both_get_the_same_complete_files(clean_cache: Path) -> None:
    processes = [_run_fresh_process(clean_cache) for _ in range(2)]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [stderr for _, stderr in outputs]
    assert [stdout.split()[0] for stdout, _ in outputs] == ["384", "384"]
    # The lock let one process export while the other waited: one announcement, one set of files.
    assert sum("exporting" in stderr for _, stderr in outputs) == 1
    (export_dir,) = [p for p in onnx_cache_dir().iterdir() if p.is_dir()]
    assert sorted(p.name for p in export_dir.iterdir() if not p.name.startswith(".")) == [
        "export.json",
        FP32_NAME,
        INT8_NAME,
    ]


def test_the_cache_key_is_the_model_content_not_its_path(clean_cache: Path, tmp_path: Path) -> None:
    original = resolve_model_folder("all-MiniLM-L6-v2")
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    assert model_fingerprint(copy) == model_fingerprint(original)
    config = json.loads((copy / "config.json").read_text())
    config["layer_norm_eps"] = 1e-6
    (copy / "config.json").write_text(json.dumps(config))
    assert model_fingerprint(copy) != model_fingerprint(original)


def test_a_remembered_fingerprint_is_not_trusted_after_the_weights_change(clean_cache: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(resolve_model_folder("all-MiniLM-L6-v2"), copy)
    before = model_fingerprint(copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert model_fingerprint(copy) != before


def test_unknown_precision_is_refused(clean_cache: Path) -> None:
    with pytest.raises(ValueError, match="precision must be fp32 or int8"):
        exported_model(resolve_model_folder("all-MiniLM-L6-v2"), "int4")


def test_the_fp32_export_gives_the_torch_vectors() -> None:
    texts = ["a cat sat on the mat", "How are retries configured?"]
    cosines = (load_embedder(kind="onnx-fp32").embed(texts) * load_embedder(kind="torch").embed(texts)).sum(axis=1)
    assert np.all(cosines > 0.9999)
