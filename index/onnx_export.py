"""Export a sentence-transformers model to ONNX once, quantise it to int8, and cache both files.

The export reads the weights already installed (``torch.onnx`` over the transformers model, never a
download); the int8 file is onnxruntime's dynamic quantisation of the fp32 one. Both live under
``$XDG_CACHE_HOME/rag-assistant/onnx/<model hash>/`` (``~/.cache/...``), keyed by the sha256 of the
model's config and weights, so a changed model gets a new export and two installs of the same model
share one. Files are written to a temporary name and renamed into place, under a lock, so two
processes exporting at once neither clash nor leave half a file.

How the int8 file is quantised: the weights of every MatMul, one scale per output channel, except
the feed-forward output projections (``layer.N/output/dense``), which stay fp32; the word-embedding
table (a Gather) stays fp32 too. Measured against the fp32 torch vectors, cosine per vector as mean /
min, one text a call (see ``index.onnx_embedder.INT8_BATCH_SIZE``), on 150 SciFact abstracts, 100
SciFact claims, 100 SQuAD questions and 10 one- or two-word texts, busy 2-core x86_64 with VNNI:

=====================================  ===============  ===============  ===============  ===============  ==========
recipe                                 abstracts        claims           SQuAD questions  words            abstracts/s
=====================================  ===============  ===============  ===============  ===============  ==========
all MatMuls, one scale per tensor      0.936 / 0.896 (batched of 16, abstracts and 3 short texts)
all MatMuls, per channel               0.9947 / 0.9923  0.9941 / 0.9905  0.9955 / 0.9928  0.9877 / 0.9685  19.6
per channel, FFN output fp32 (used)    0.9978 / 0.9966  0.9971 / 0.9957  0.9976 / 0.9966  0.9913 / 0.9736  17.9
... and layer 0's FFN input fp32       0.9980 / 0.9959  0.9974 / 0.9961  0.9978 / 0.9968  0.9928 / 0.9799  16.7
... and attention output fp32          0.9979 / 0.9963  0.9972 / 0.9960  0.9976 / 0.9962  0.9923 / 0.9796  17.6
whole FFN fp32                         0.9989 / 0.9982  0.9989 / 0.9985  0.9992 / 0.9988  0.9974 / 0.9921  12.7
activations over a reduced range       worse: 0.993 / 0.975 (batched)
=====================================  ===============  ===============  ===============  ===============  ==========

Leaving out any single other kind of MatMul, or any one layer, moved the abstracts' mean by 0.001 at
most. One-word texts are the hardest case: their three tokens give dynamic quantisation a poor range.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from index.embedding import ModelNotFoundError

EXPORT_VERSION = 2
"""Bump when the export or the quantisation recipe changes: cached files of another version are not used."""
OPSET = 17
FP32_NAME = "model-fp32.onnx"
INT8_NAME = "model-int8.onnx"
QUANTIZE_PER_CHANNEL = True
QUANTIZE_OP_TYPES = ("MatMul",)
KEEP_FP32 = re.compile(r"/layer\.\d+/output/dense/MatMul$")
"""The feed-forward output projections (not ``attention/output``): quantising them cost the most (above)."""
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")

log = logging.getLogger(__name__)


def onnx_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rag-assistant/onnx``, else ``~/.cache/rag-assistant/onnx``."""
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "rag-assistant" / "onnx"


def _weight_files(folder: Path) -> list[Path]:
    names = ("config.json", "model.safetensors", "pytorch_model.bin")
    files = [folder / name for name in names if (folder / name).is_file()]
    if len(files) < 2:
        raise ModelNotFoundError(f"{folder}: no model weights (model.safetensors or pytorch_model.bin) to export")
    return files


def model_fingerprint(folder: Path) -> str:
    """sha256 of the model's config and weights, remembered per file size and time so a start stays quick.

    Hashing the 90 MB of weights takes a tenth of a second; the memo turns it into a few ``stat`` calls.
    """
    files = _weight_files(folder)
    stamp = [[str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns] for path in files]
    memo_path = onnx_cache_dir() / "fingerprints.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    key = str(folder.resolve())
    if isinstance(memo.get(key), dict) and memo[key].get("stamp") == stamp:
        return str(memo[key]["sha256"])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    fingerprint = digest.hexdigest()
    memo[key] = {"stamp": stamp, "sha256": fingerprint}
    memo_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(memo_path, lambda path: path.write_text(json.dumps(memo, indent=1)))
    return fingerprint


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Let ``write`` fill a temporary file beside ``path``, then rename it into place."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def exported_model(folder: Path, precision: str) -> Path:
    """The cached ONNX file of the model in ``folder`` at ``precision`` (``fp32`` or ``int8``), made if missing.

    The first call exports (about 10 s) and quantises (about 5 s); it needs torch and transformers,
    which later calls never import.
    """
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    target_dir = onnx_cache_dir() / f"{model_fingerprint(folder)[:16]}-v{EXPORT_VERSION}"
    wanted = target_dir / (INT8_NAME if precision == "int8" else FP32_NAME)
    if wanted.is_file():
        return wanted
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting the same model: wait for it
        fp32 = target_dir / FP32_NAME
        if not wanted.is_file():
            log.warning("exporting the embedding model to ONNX (%s); this happens once, in about 20 s", precision)
        if not fp32.is_file():
            _atomic_write(fp32, lambda path: export_onnx(folder, path))
        if precision == "int8" and not wanted.is_file():
            _atomic_write(wanted, lambda path: quantize_int8(fp32, path))
        _write_provenance(target_dir, folder)
    return wanted


def export_onnx(folder: Path, destination: Path) -> None:
    """Trace the transformer of the model in ``folder`` into an ONNX graph whose output is the token vectors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging
    except ImportError as error:  # both are dependencies; a trimmed install may lack them
        raise ModelNotFoundError(f"exporting the model to ONNX needs torch and transformers ({error})") from error

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    # The eager attention traces into plain MatMul/Softmax nodes that onnxruntime fuses and quantises.
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    takes_token_types = getattr(model.config, "type_vocab_size", 0) > 0
    input_names = list(INPUT_NAMES if takes_token_types else INPUT_NAMES[:2])

    class TokenVectors(torch.nn.Module):
        """The transformer with one output: the last hidden state (what sentence-transformers pools)."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(input_names, inputs))).last_hidden_state

    example = torch.ones((2, 8), dtype=torch.long)
    dynamic = {"batch": 0, "sequence": 1}
    axes = {name: {axis: label for label, axis in dynamic.items()} for name in [*input_names, "token_vectors"]}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes: checked by the contract tests instead
        torch.onnx.export(
            TokenVectors(),
            tuple(example for _ in input_names),
            str(destination),
            input_names=input_names,
            output_names=["token_vectors"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript and gains nothing here
        )


def quantize_int8(fp32_path: Path, destination: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, one scale per output channel (see the module docstring)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = [node.name for node in onnx.load(str(fp32_path)).graph.node if KEEP_FP32.search(node.name)]

    logging.disable(logging.WARNING)  # it advises "pre-processing" on the root logger; measured not to matter here
    try:
        quantize_dynamic(
            fp32_path,
            destination,
            weight_type=QuantType.QInt8,
            per_channel=QUANTIZE_PER_CHANNEL,
            op_types_to_quantize=list(QUANTIZE_OP_TYPES),
            nodes_to_exclude=kept,
        )
    finally:
        logging.disable(logging.NOTSET)


def _write_provenance(target_dir: Path, folder: Path) -> None:
    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    info = {
        "source": str(folder),
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
        "quantization": {
            "per_channel": QUANTIZE_PER_CHANNEL,
            "op_types": list(QUANTIZE_OP_TYPES),
            "kept_fp32": KEEP_FP32.pattern,
        },
        "exported_at": time.time(),
        "packages": {name: version(name) for name in ("torch", "transformers", "onnxruntime", "onnx")},
    }
    _atomic_write(target_dir / "export.json", lambda path: path.write_text(json.dumps(info, indent=2)))
