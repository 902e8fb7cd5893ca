"""The extractive answerer's sentence choice, with the packaged embedding model (no index needed)."""

from __future__ import annotations

import numpy as np
import pytest

from index.embedding import Embedder, load_embedder
from rag.answering.extractive import ExtractiveAnswerer, ExtractiveSettings
from rag.answering.sentences import EncodingCache

# Written for these tests.
GLACIER = (
    "The Karvo glacier covered the northern valley during the last ice age. "
    "It retreated quickly after 9000 BC, leaving a chain of lakes behind."
)
SOUTHERN = (
    "Glaciers in the southern range retreated slowly over many centuries. "
    "Their meltwater still feeds the river that runs through the capital."
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder()


@pytest.fixture(scope="module")
def answerer(embedder: Embedder) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(EncodingCache(embedder.encode).encode)


def test_encode_gives_the_embed_vector_and_normalised_word_piece_vectors(embedder: Embedder) -> None:
    text = "Bureaucracies were instituted by the Normans."
    encoding = embedder.encode([text])[0]
    assert float(encoding.vector @ embedder.embed([text])[0]) == pytest.approx(1.0, abs=1e-4)
    assert encoding.tokens[0] == "bureau" and "[CLS]" not in encoding.tokens and "[SEP]" not in encoding.tokens
    assert encoding.token_vectors.shape == (len(encoding.tokens), embedder.dimension)
    norms = np.linalg.norm(encoding.token_vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)


def test_a_sentence_naming_its_subject_only_in_the_sentence_before_still_answers(answerer: ExtractiveAnswerer) -> None:
    chosen = answerer.answer_sentences("When did the Karvo glacier retreat?", [SOUTHERN, GLACIER])
    assert chosen, "the answerer abstained"
    assert {s.passage_index for s in chosen} == {1}
    assert any("9000 BC" in s.span.clean for s in chosen)


def test_word_forms_match_through_token_vectors(answerer: ExtractiveAnswerer) -> None:
    # No stem of the question but "normans" is in the answer sentence; "instituted" is in the distractor.
    passages = [
        (
            "The Normans instituted many new taxes in the south. "
            "Alongside the Norman nobles served a meritocratic bureaucratic class of Greek and Arab clerks."
        )
    ]
    scoring = answerer.score("What kind of bureaucracy did the Normans institute?", passages)
    by_text = {s.span.clean: s for s in scoring.sentences}
    answer = by_text["Alongside the Norman nobles served a meritocratic bureaucratic class of Greek and Arab clerks."]
    distractor = by_text["The Normans instituted many new taxes in the south."]
    assert answer.token_match > distractor.token_match


def test_second_sentence_comes_from_the_best_passage_only(answerer: ExtractiveAnswerer) -> None:
    chosen = answerer.answer_sentences("How did the glaciers retreat?", [GLACIER, SOUTHERN])
    assert len(chosen) == 2
    assert len({s.passage_index for s in chosen}) == 1


def test_max_sentences_one_gives_one_sentence(embedder: Embedder) -> None:
    answerer = ExtractiveAnswerer(embedder.encode, ExtractiveSettings(max_sentences=1))
    assert len(answerer.answer_sentences("When did the Karvo glacier retreat?", [GLACIER])) == 1


def test_question_with_nothing_in_common_is_declined(answerer: ExtractiveAnswerer) -> None:
    assert answerer.answer_sentences("What is the boiling point of mercury in kelvin?", [GLACIER, SOUTHERN]) == []


def test_question_of_only_function_words_is_scored_without_error(answerer: ExtractiveAnswerer) -> None:
    # No token of "What is it?" carries a topic; scoring must still work (it crashed with a KeyError).
    scoring = answerer.score("What is it?", [GLACIER])
    assert len(scoring.sentences) == 2
    assert all(s.token_match == 0.0 for s in scoring.sentences)
