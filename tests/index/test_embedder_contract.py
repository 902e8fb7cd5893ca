"""The behaviour every Embedder shares, run against each implementation (int8 ONNX, fp32 ONNX, torch).

The ONNX embedders are also held to the torch one, which is the reference their vectors replace.
"""

from __future__ import annotations

import numpy as np
import pytest

from index.embedding import EMBEDDER_KINDS, Embedder, Encoding, load_embedder

# A handful of texts of the kinds the index holds: a query, a sentence, a one-word text, an abstract.
TEXTS = [
    "How are retries configured?",
    "The meeting moved to Thursday at noon because the room was booked.",
    "hello",
    ("Glaciers in the southern range retreated slowly over many centuries; their meltwater still feeds "
    "the river that runs through the capital, and the valley floor holds a chain of lakes they left behind."),
    ("Mitochondrial dysfunction is associated with insulin resistance in skeletal muscle of elderly "
    "individuals, which suggests that an age-related decline in oxidative phosphorylation contributes to "
    "type 2 diabetes."),
    "def add(a, b):\n    return a + b",
]


@pytest.fixture(scope="module", params=EMBEDDER_KINDS)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return load_embedder(kind=request.param)


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return load_embedder(kind="torch").embed(TEXTS)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_kind_names_backend_and_precision(embedder: Embedder) -> None:
    assert embedder.kind in EMBEDDER_KINDS
    assert f"{embedder.backend}-{embedder.precision}" == (
        "torch-fp32" if embedder.kind == "torch" else embedder.kind
    )


def test_embed_gives_one_normalised_float32_row_per_text_in_order(embedder: Embedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.dimension) == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Each row is its own text's vector, whatever order the batch ran in.
    alone = np.vstack([embedder.embed([text]) for text in TEXTS])
    assert _cosines(vectors, alone).min() > 0.99


def test_empty_input_gives_empty_results(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dimension)
    assert embedder.encode([]) == []


def test_embed_query_is_the_row_embed_gives(embedder: Embedder) -> None:
    # The ONNX embedders run queries on a session of their own (more threads): the vector must not change.
    rows = embedder.embed(TEXTS)
    for text, row in zip(TEXTS, rows):
        vector = embedder.embed_query(text)
        assert vector.dtype == np.float32 and vector.shape == (embedder.dimension,)
        assert float(vector @ row) == pytest.approx(1.0, abs=1e-5)


def test_related_texts_are_closer_than_unrelated_ones(embedder: Embedder) -> None:
    cat, kitten, tax = embedder.embed(["a cat sat on the mat", "a kitten lay on the rug", "quarterly tax filing"])
    assert cat @ kitten > cat @ tax + 0.2


def test_encode_gives_the_embed_vector_and_one_unit_vector_per_word_piece(embedder: Embedder) -> None:
    encodings = embedder.encode(TEXTS)
    vectors = embedder.embed(TEXTS)
    assert all(isinstance(e, Encoding) for e in encodings) and len(encodings) == len(TEXTS)
    for encoding, vector, text in zip(encodings, vectors, TEXTS):
        assert float(encoding.vector @ vector) > 0.999
        assert "[CLS]" not in encoding.tokens and "[SEP]" not in encoding.tokens and "[PAD]" not in encoding.tokens
        assert len(encoding.tokens) == embedder.count_tokens(text)
        assert encoding.token_vectors.shape == (len(encoding.tokens), embedder.dimension)
        assert encoding.token_vectors.dtype == np.float16
        assert np.allclose(np.linalg.norm(encoding.token_vectors.astype(np.float32), axis=1), 1.0, atol=1e-2)
    assert encodings[1].tokens[:4] == ("the", "meeting", "moved", "to")


def test_counts_tokens_without_special_tokens_and_truncates_long_text(embedder: Embedder) -> None:
    assert embedder.count_tokens("hello world") == 2
    assert embedder.max_tokens == 256
    long_text = " ".join(["glacier meltwater feeds the river"] * 200)  # about 1,000 tokens
    assert embedder.count_tokens(long_text) > 4 * embedder.max_tokens
    (encoding,) = embedder.encode([long_text])
    assert len(encoding.tokens) == embedder.max_tokens - 2  # [CLS] and [SEP] take two places
    assert embedder.embed([long_text]).shape == (1, embedder.dimension)


def test_vectors_agree_with_the_torch_reference(embedder: Embedder, torch_vectors: np.ndarray) -> None:
    # Measured: fp32 ONNX 1.0000; int8 0.991 ("hello") to 0.998 (see the table in index/onnx_export.py).
    assert _cosines(embedder.embed(TEXTS), torch_vectors).min() > 0.99


def test_token_vectors_agree_with_the_torch_reference(embedder: Embedder) -> None:
    reference = load_embedder(kind="torch").encode(TEXTS[:2])
    for encoding, expected in zip(embedder.encode(TEXTS[:2]), reference):
        assert encoding.tokens == expected.tokens
        cosines = _cosines(encoding.token_vectors.astype(np.float32), expected.token_vectors.astype(np.float32))
        assert cosines.min() > 0.95 and cosines.mean() > 0.98
