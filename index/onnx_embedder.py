"""The ONNX Runtime embedder (the default): tokenised with ``tokenizers``, pooled in numpy, no torch.

The ONNX file comes from :func:`index.onnx_export.exported_model` (exported from the installed
weights on first use, then cached). Its one output is the token vectors; sentence vectors are
their mean over the real tokens (or the [CLS] vector, as the model's pooling config says), then
L2-normalised, as sentence-transformers computes them.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.embedding import DEFAULT_MODEL, Embedder, Encoding, ModelNotFoundError, resolve_model_folder

if TYPE_CHECKING:
    from collections.abc import Iterator

    import onnxruntime
    from tokenizers import Encoding as TokenizedText
    from tokenizers import Tokenizer

INT8_BATCH_SIZE = 1
"""Texts per model call with int8: one, so a text's vector does not depend on the texts beside it.

Why: dynamic quantisation scales each activation matrix by its own range, so in a batch one text's
(and the padding's) activations set another's scale. Measured (busy 2-core machine, 203 SciFact
abstracts and short texts, one thread): batches of 16 sorted by length gave cosines to torch of mean
0.9944, min 0.975, and one text moved by up to 0.02 when embedded alone; one text a call gave mean
0.9947, min 0.989, at the same speed (about 12 texts/s each), since nothing is padded.
"""
FP32_BATCH_SIZE = 16


@dataclass(frozen=True)
class _ModelConfig:
    dimension: int
    max_tokens: int
    pooling: str  # "mean" or "cls"


class OnnxEmbedder(Embedder):
    """Embeds texts with the model's ONNX export on onnxruntime, int8-quantised by default.

    >>> embedder = OnnxEmbedder(precision="fp32")
    >>> embedder.kind, embedder.embed(["a cat sat on the mat"]).shape
    ('onnx-fp32', (1, 384))
    """

    def __init__(
        self, model: str = DEFAULT_MODEL, precision: str = "int8", batch_size: int | None = None, workers: int | None = None
    ) -> None:
        if precision not in ("int8", "fp32"):
            raise ValueError(f"precision must be int8 or fp32, got {precision!r}")
        super().__init__(model, batch_size or (INT8_BATCH_SIZE if precision == "int8" else FP32_BATCH_SIZE))
        self.kind = f"onnx-{precision}"
        self.workers = workers or os.cpu_count() or 1
        self._session_lock = threading.Lock()
        self._loaded_session: onnxruntime.InferenceSession | None = None
        self._loaded_query_session: onnxruntime.InferenceSession | None = None

    @cached_property
    def folder(self) -> Path:
        """The model's files on disk."""
        return resolve_model_folder(self.model)

    @cached_property
    def _config(self) -> _ModelConfig:
        """Dimension, input limit and pooling, read from the model folder's own config files."""
        folder = self.folder
        config = _read_json(folder / "config.json")
        sentence_config = _read_json(folder / "sentence_bert_config.json")
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        if pooling.get("pooling_mode_cls_token"):
            mode = "cls"
        elif pooling.get("pooling_mode_mean_tokens", True) and not any(
            pooling.get(key) for key in ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
        ):
            mode = "mean"
        else:
            raise ModelNotFoundError(f"{self.model}: its pooling is not supported by the ONNX embedder; use torch")
        positions = int(config.get("max_position_embeddings", 512))  # type: ignore[call-overload]
        return _ModelConfig(
            dimension=int(pooling.get("word_embedding_dimension") or config["hidden_size"]),  # type: ignore[call-overload]
            max_tokens=min(int(sentence_config.get("max_seq_length", positions)), positions),  # type: ignore[call-overload]
            pooling=mode,
        )

    def _tokenizer_json(self) -> str:
        path = self.folder / "tokenizer.json"
        if not path.is_file():
            raise ModelNotFoundError(f"{self.folder}: no tokenizer.json; the ONNX embedder needs a fast tokenizer")
        return path.read_text(encoding="utf-8")

    @cached_property
    def _model_tokenizer(self) -> Tokenizer:
        """The tokenizer as the model reads: special tokens added, truncated at ``max_tokens``."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self._tokenizer_json())
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        return tokenizer

    @property
    def dimension(self) -> int:
        return self._config.dimension

    @property
    def max_tokens(self) -> int:
        return self._config.max_tokens

    @property
    def _session(self) -> onnxruntime.InferenceSession:
        """One session on one thread, shared by every caller; batches run side by side on ``workers`` threads.

        Why not onnxruntime's own threads: measured on the busy 2-core machine, SciFact abstracts one at
        a time, one session with two intra-op threads ran 6.7 to 8.4 texts/s, one thread 10 to 12, and two
        callers sharing a one-thread session 14 to 15: the intra-op workers spin-wait for cores other
        processes hold, and a single short query gives two threads too little work to share anyway.
        """
        with self._session_lock:
            if self._loaded_session is None:
                self._loaded_session = self._new_session(threads=1)
            return self._loaded_session

    @property
    def _query_session(self) -> onnxruntime.InferenceSession:
        """The session :meth:`embed_query` runs on: all cores, whose idle workers sleep rather than spin.

        A search embeds one short text; on an idle machine two threads share even that. Measured on the
        2-core machine, 300 SciFact claims one at a time, model run alone (p50 / p95 ms): idle, one
        thread 4.08 / 6.60, two spinning 3.57 / 5.75, two not spinning 3.63 / 5.46; at load 3, one
        thread 4.81 / 10.40, two not spinning 5.17 / 11.14, two spinning 16.5 / 40.5 (the workers
        spin on cores other processes hold). Hence not spinning; ingestion keeps the one-thread
        session, where two callers already use both cores. The answerer's :meth:`encode` runs here too
        (two callers on it embedded 40 sentences as fast as on the one-thread session, at load 8: 404
        against 458 ms), so that a ``rag ask`` loads one session, not two (the second cost 0.18 s CPU).
        """
        with self._session_lock:
            if self._loaded_query_session is None:
                self._loaded_query_session = self._new_session(threads=min(os.cpu_count() or 1, 4), spin=False)
            return self._loaded_query_session

    def _new_session(self, threads: int, spin: bool = True) -> onnxruntime.InferenceSession:
        import onnxruntime

        from index.onnx_export import exported_model

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers mean nothing to a user
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = exported_model(self.folder, self.precision)
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed_query(self, query: str) -> np.ndarray:
        """One normalised vector for a search query, run on :attr:`_query_session`."""
        tokenized = self._model_tokenizer.encode(query)
        session = self._query_session
        inputs = _padded_inputs([tokenized])
        (token_vectors,) = session.run(None, {inp.name: inputs[inp.name] for inp in session.get_inputs()})
        vector = self._pool(token_vectors, [tokenized])[0]
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for positions, tokenized, token_vectors in self._run(texts):
            vectors[positions] = self._pool(token_vectors, tokenized)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def encode(self, texts: list[str]) -> list[Encoding]:
        """Token vectors for the answerer, at query time: on :attr:`_query_session`, so a ``rag ask`` loads one session."""
        encodings: list[Encoding | None] = [None] * len(texts)
        for positions, tokenized, token_vectors in self._run(texts, self._query_session):
            pooled = self._pool(token_vectors, tokenized)
            for row, (position, text) in enumerate(zip(positions, tokenized)):
                keep = [i for i, special in enumerate(text.special_tokens_mask) if not special]
                encodings[position] = Encoding.from_model_output(
                    pooled[row], [text.tokens[i] for i in keep], token_vectors[row, keep]
                )
        return [encoding for encoding in encodings if encoding is not None]

    def _run(
        self, texts: list[str], session: onnxruntime.InferenceSession | None = None
    ) -> Iterator[tuple[list[int], list[TokenizedText], np.ndarray]]:
        """Tokenise, sort by length (little padding), and run the model batch by batch on ``workers`` threads.

        ``session`` defaults to the one-thread :attr:`_session` of ingestion. Yields each batch's positions in ``texts``, its tokenised texts and the model's token vectors
        (batch, longest, dimension); rows past a text's length are padding.
        """
        tokenized = self._model_tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(tokenized[i].ids))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        session = session or self._session
        wanted = {inp.name for inp in session.get_inputs()}

        def run(positions: list[int]) -> tuple[list[int], list[TokenizedText], np.ndarray]:
            batch = [tokenized[i] for i in positions]
            inputs = _padded_inputs(batch)
            (token_vectors,) = session.run(None, {name: inputs[name] for name in wanted})
            return positions, batch, token_vectors

        if len(batches) == 1 or self.workers == 1:
            yield from map(run, batches)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="embed") as pool:
            yield from pool.map(run, batches)

    def _pool(self, token_vectors: np.ndarray, tokenized: list[TokenizedText]) -> np.ndarray:
        if self._config.pooling == "cls":
            return token_vectors[:, 0, :]
        mask = np.zeros(token_vectors.shape[:2], dtype=np.float32)
        for row, text in enumerate(tokenized):
            mask[row, : len(text.ids)] = 1.0
        return (token_vectors * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)


def _padded_inputs(batch: list[TokenizedText]) -> dict[str, np.ndarray]:
    """input_ids, attention_mask and token_type_ids of a batch, padded with zeros to its longest text."""
    longest = max(len(text.ids) for text in batch)
    ids = np.zeros((len(batch), longest), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, text in enumerate(batch):
        length = len(text.ids)
        ids[row, :length] = text.ids
        mask[row, :length] = 1
        types[row, :length] = text.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _read_json(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ModelNotFoundError(f"{path}: not valid JSON ({error})") from None
    return data if isinstance(data, dict) else {}
