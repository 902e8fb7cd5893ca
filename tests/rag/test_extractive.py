"""The extractive answerer's sentence choice, with the packaged embedding model (no index needed)."""

from __future__ import annotations

import numpy as np
import pytest

from index.embedding import Embedder, load_embedder
from rag.answering.extractive import ExtractiveAnswerer, ExtractiveSettings, _defines, asked_subject
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


def _chunk_passage(text: str, document: str, start: int, heading: str, rank: int):
    from index.types import Chunk
    from rag.types import Passage

    chunk = Chunk(f"{document}-{start}", document, text, start, start + len(text), heading=heading)
    return Passage(chunk, 1.0 / rank, rank, "hybrid", document, document)


# Written for these tests: one section of a document, cut into two chunks, and another document.
RETREAT_FIRST = "The Karvo glacier's retreat was caused by warmer summers that melted more ice than winters brought."
RETREAT_SECOND = "The Karvo glacier retreated from the valley floor. Guided tours leave the village every morning."
ELSEWHERE = "Hikers say the Karvo glacier retreated because of the summers. The hut sells maps of the valley."


def test_the_second_sentence_may_come_from_another_chunk_of_the_same_section(answerer: ExtractiveAnswerer) -> None:
    # Where the chunker cut a section must not decide what the answer says: the sentence giving the
    # cause sits in the other chunk of the section the best sentence comes from.
    passages = [
        _chunk_passage(RETREAT_SECOND, "glacier.md", 400, "Glaciers > Karvo", 1),
        _chunk_passage(ELSEWHERE, "tours.md", 0, "Tours", 2),
        _chunk_passage(RETREAT_FIRST, "glacier.md", 0, "Glaciers > Karvo", 3),
    ]
    chosen = answerer.answer_sentences("Why did the Karvo glacier retreat?", passages)
    assert [s.passage_index for s in chosen] == [2, 0], [s.span.clean for s in chosen]  # in document order


def test_a_chunk_of_another_section_is_not_a_second_sentence(answerer: ExtractiveAnswerer) -> None:
    passages = [
        _chunk_passage(RETREAT_SECOND, "glacier.md", 400, "Glaciers > Karvo", 1),
        _chunk_passage(RETREAT_FIRST, "glacier.md", 0, "Glaciers > Another", 2),
    ]
    chosen = answerer.answer_sentences("Why did the Karvo glacier retreat?", passages)
    assert len({s.passage_index for s in chosen}) == 1


def test_a_question_word_a_long_document_never_uses_lowers_the_confidence(embedder: Embedder) -> None:
    # "second round" is known to the collection (every stem in 5 of 1,000 chunks) but the article never
    # uses it: the article reports the first round, not the second.
    article = (
        "The talks between the two countries started in May. The first meeting was held in Beijing, "
        "and both sides agreed to establish a framework on safety."
    )
    passage = _chunk_passage(article, "talks.txt", 0, "Talks", 1)

    def frequencies(stems):
        return 1000, [5] * len(stems)

    def long_document(document_id):
        from index.bm25 import tokenize

        return frozenset(tokenize(article))

    question = "When will the second round of the talks be held?"
    plain = ExtractiveAnswerer(EncodingCache(embedder.encode).encode, document_frequencies=frequencies)
    checked = ExtractiveAnswerer(
        EncodingCache(embedder.encode).encode, document_frequencies=frequencies, document_stems=long_document
    )
    short = ExtractiveAnswerer(
        EncodingCache(embedder.encode).encode, document_frequencies=frequencies, document_stems=lambda _: None
    )
    assert plain.score(question, [passage]).document_support == 1.0
    assert short.score(question, [passage]).document_support == 1.0  # a short document: absence says little
    scoring = checked.score(question, [passage])
    assert 0.3 < scoring.document_support < 0.8  # "second" and "round" of "second round talks held"
    assert scoring.confidence < plain.score(question, [passage]).confidence
    # Every word of this one is in the article: nothing changes.
    asked = "When did the talks between the two countries start?"
    assert checked.score(asked, [passage]).document_support == 1.0


def test_what_someone_said_needs_a_sentence_reporting_them_saying_it() -> None:
    from rag.answering.extractive import speaker_quoted

    # Written for this test.
    passage = (
        "Mayor Lena Ortiz met the council chair in the harbour office. "
        "The lighthouse will be rebuilt, council chair Tomas Berg announced on Friday. "
        '"It will take two years," he told reporters.'
    )
    sentences = [(passage, sentence) for sentence in passage.split(". ")]
    assert speaker_quoted("What did Tomas Berg say about the lighthouse?", sentences)
    assert speaker_quoted("What did the council chair say about the lighthouse?", sentences)
    # Named, never reported saying anything:
    assert not speaker_quoted("What did Lena Ortiz say about the lighthouse?", sentences)
    assert not speaker_quoted("What did the governor say about it?", sentences)
    # Any other question is not concerned.
    assert speaker_quoted("Who met the council chair?", sentences)
    # A pronoun names whoever the conversation did: not checked (the HTTP follow-up test abstained on
    # "What did she say the lighthouse work would cost?" when "she" was taken for a name).
    assert speaker_quoted("What did she say the lighthouse work would cost?", sentences)
    # "he told" counts for a speaker the passage names.
    told = [(passage, '"It will take two years," he told reporters.')]
    assert speaker_quoted("What did Berg tell reporters?", told)


# Written for this test: the follow-up's answer names the station, not the word, and says "told", not "tell".
BUDGET = (
    "Minister Alda Renn spoke about the harbour budget on Monday. "
    "Later that day she told Radio Kaar that the budget would double. The harbour itself dates from 1820."
)


def test_a_follow_ups_word_match_skips_its_pronoun_and_the_kind_asked_for_and_reads_irregular_forms(
    answerer: ExtractiveAnswerer,
) -> None:
    def lexical(question: str, passage: str = BUDGET) -> dict[str, float]:
        scoring = answerer.score(question, [passage], "Alda Renn harbour budget", resolved=question)
        return {s.span.clean[:20]: s.lexical for s in scoring.sentences}

    asked = lexical("Which station did she tell?")
    # "she" and "station" are no words the answer must hold: other pronouns and kinds score the same.
    assert lexical("Which network did he tell?") == pytest.approx(asked)
    # "told" is "tell": the same sentence with a regular verb that is not "tell" matches less.
    informed = lexical("Which station did she tell?", BUDGET.replace("told", "informed"))
    assert asked["Later that day she t"] > informed["Later that day she i"] > 0


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("What is a tuple made of?", ("tupl",)),
        ("What is the finally clause for?", ("final", "claus")),
        ("What does net.createConnection() do?", ("net", "createconnect")),
        ("How do I create a tuple?", ()),
    ],
)
def test_the_subject_of_a_what_is_question(question: str, subject: tuple[str, ...]) -> None:
    assert asked_subject(question) == subject


def test_a_sentence_defines_the_subject_it_opens_with() -> None:
    # Sentences of the Python tutorial's "Tuples and Sequences".
    assert _defines("A tuple consists of a number of values separated by commas, for instance:", ("tupl",))
    assert _defines("Tuples are immutable, and usually contain a heterogeneous sequence of elements.", ("tupl",))
    assert not _defines("Empty tuples are constructed by an empty pair of parentheses.", ("tupl",))
    assert not _defines("There is also another standard sequence data type: the tuple.", ("tupl",))
