"""The answer chain over a small real index: extractive answers, abstention, streaming, the runnable, fake LLMs."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from rag import Retriever
from rag.answering.assistant import Assistant
from rag.answering.citations import ABSTENTION_TEXT
from rag.types import Answer, AnswerDelta
from tests.rag.conftest import index_of

# Written for these tests. Headings, a contents list, a link line and code sit next to the prose,
# as in real documents: none of them answers a question.
DOCUMENTS = {
    "tea.md": """# Tea processing

## Contents
- Green Tea
- Black Tea
- Oolong Tea

## Black Tea

Black tea leaves are rolled and then left to oxidise fully before they are dried in hot air.
Green tea is steamed or pan-fired soon after picking, which stops the leaves from oxidising.
Oolong is only partly oxidised, so its taste lies between green and black tea.

Related articles: Coffee Roasting Basics | History Of Porcelain | Water Hardness Explained
""",
    "harbour.txt": """Harbour Town Council Minutes

The council voted on Tuesday to rebuild the old lighthouse on the north pier.
Mayor Ellen Quist said the work would begin in March and cost about two million euros.
She added that the lighthouse had been dark since a storm damaged its lamp in 2019.
The ferry timetable will not change during the works.
""",
    "shell.md": """## Listing files

Use the `ls` command to list the files in a folder; `ls -l` also shows their sizes and dates.

```sh
ls -l /tmp
```

Hidden files, whose names start with a dot, are shown only with `ls -a`.
""",
}


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    return Retriever.open(index_of(DOCUMENTS, tmp_path_factory))


@pytest.fixture(scope="module")
def assistant(retriever: Retriever) -> Assistant:
    return Assistant(retriever, k=4)


class ExplodingChatModel(FakeListChatModel):
    """A chat model that must not be called."""

    def _call(self, *args, **kwargs):
        raise AssertionError("the LLM was called although retrieval was too weak")


def test_extractive_answer_picks_the_prose_sentence_not_headings(assistant: Assistant) -> None:
    answer = assistant.ask("How is black tea made?")
    assert not answer.abstained
    assert "rolled and then left to oxidise fully" in answer.text
    assert "Contents" not in answer.text and "Related articles" not in answer.text
    assert answer.text.count("[") <= 2  # short: at most two cited sentences
    assert all(c.supported for c in answer.citations)
    assert {Path(c.source).name for c in answer.citations} == {"tea.md"}


def test_citation_offsets_point_at_the_quote_in_the_document(assistant: Assistant, retriever: Retriever) -> None:
    answer = assistant.ask("When will the lighthouse work begin?")
    assert "March" in answer.text
    for citation in answer.citations:
        document = retriever.store.get_document(citation.document_id)
        assert " ".join(document.text[citation.start : citation.end].split()) == citation.quote
        assert f"[{citation.marker}]" in answer.text
        assert answer.passages[citation.marker - 1].chunk_id == citation.chunk_id


def test_question_the_documents_cannot_answer_is_declined(assistant: Assistant) -> None:
    answer = assistant.ask("What is the boiling point of mercury in kelvin?")
    assert answer.abstained
    assert answer.text == ABSTENTION_TEXT
    assert answer.citations == []


def test_code_lines_are_not_answers_but_a_how_to_answer_shows_the_example(assistant: Assistant) -> None:
    answer = assistant.ask("How do I show hidden files?")
    assert "ls -a" in answer.text
    # The code line is never quoted as a sentence; it may only follow its introduction as a fenced example.
    assert all("ls -l /tmp" not in citation.quote for citation in answer.citations)
    if "ls -l /tmp" in answer.text:
        assert "```sh\nls -l /tmp\n```" in answer.text


def test_stream_yields_text_then_the_answer(assistant: Assistant) -> None:
    deltas = list(assistant.stream("Who is the mayor?"))
    assert all(isinstance(d, AnswerDelta) for d in deltas)
    assert deltas[-1].answer is not None and all(d.answer is None for d in deltas[:-1])
    assert "".join(d.text for d in deltas) == deltas[-1].answer.text
    assert "Ellen Quist" in deltas[-1].answer.text


def test_two_turn_conversation_resolves_the_follow_up(assistant: Assistant) -> None:
    first = assistant.ask("Why was the lighthouse on the north pier dark?")
    assert "storm" in first.text
    history = [
        {"role": "user", "content": "Why was the lighthouse on the north pier dark?"},
        {"role": "assistant", "content": first.text},
    ]
    follow_up = assistant.ask("How much will rebuilding it cost?", history=history)
    assert "two million euros" in follow_up.text
    # The same follow-up with no history has nothing to go on.
    assert assistant.standalone_query("How much will rebuilding it cost?") == "How much will rebuilding it cost?"
    assert "lighthouse" in assistant.standalone_query("How much will rebuilding it cost?", history)


def test_runnable_supports_invoke_batch_and_stream(assistant: Assistant) -> None:
    chain = assistant.as_runnable()
    answer = chain.invoke({"question": "Who is the mayor?", "history": []})
    assert isinstance(answer, Answer) and "Ellen Quist" in answer.text
    answers = chain.batch(["Who is the mayor?", "What is the boiling point of mercury in kelvin?"])
    assert [a.abstained for a in answers] == [False, True]
    deltas = list(chain.stream("Who is the mayor?"))
    assert deltas[-1].answer.text == answer.text
    follow_up = chain.invoke({"question": "How much will it cost?", "history": [("When will the lighthouse work begin?", "In March.")]})
    assert "two million euros" in follow_up.text


def test_empty_question_is_refused(assistant: Assistant) -> None:
    with pytest.raises(ValueError, match="empty"):
        assistant.ask("   ")
    with pytest.raises(ValueError, match="k must be >= 1"):
        Assistant(assistant.retriever, k=0)


def test_llm_answer_citing_the_right_passage_is_supported(retriever: Retriever) -> None:
    assistant = Assistant(retriever, k=4)
    passages = assistant.retrieve("Who is the mayor?")
    harbour = next(n for n, p in enumerate(passages, start=1) if p.source.endswith("harbour.txt"))
    llm = FakeListChatModel(responses=[f"The mayor is Ellen Quist [{harbour}]."])
    answer = Assistant(retriever, llm, k=4).ask("Who is the mayor?")
    assert answer.text == f"The mayor is Ellen Quist [{harbour}]."
    assert [c.supported for c in answer.citations] == [True]
    assert answer.unsupported_sentences == []


def test_llm_citing_the_wrong_passage_is_flagged(retriever: Retriever) -> None:
    passages = Assistant(retriever, k=4).retrieve("Who is the mayor?")
    wrong = next(n for n, p in enumerate(passages, start=1) if not p.source.endswith("harbour.txt"))
    llm = FakeListChatModel(responses=[f"The mayor is Ellen Quist [{wrong}]. The lighthouse has been dark since 2019 [99]."])
    answer = Assistant(retriever, llm, k=4).ask("Who is the mayor?")
    assert "[99]" not in answer.text
    assert [(c.marker, c.supported) for c in answer.citations] == [(wrong, False)]
    assert answer.unsupported_sentences == ["The mayor is Ellen Quist.", "The lighthouse has been dark since 2019."]


def test_llm_that_says_the_documents_do_not_answer_abstains(retriever: Retriever) -> None:
    llm = FakeListChatModel(responses=["The documents don't answer this question."])
    answer = Assistant(retriever, llm).ask("Who is the mayor?")
    assert answer.abstained and answer.citations == []


def test_llm_is_not_asked_when_retrieval_is_too_weak(retriever: Retriever) -> None:
    answer = Assistant(retriever, ExplodingChatModel(responses=["x"])).ask("What is the boiling point of mercury in kelvin?")
    assert answer.abstained


def test_llm_answer_streams_token_by_token(retriever: Retriever) -> None:
    llm = GenericFakeChatModel(messages=iter([AIMessage(content="The council will rebuild the lighthouse [1].")]))
    deltas = list(Assistant(retriever, llm, k=1).stream("What did the council vote to rebuild?"))
    assert len(deltas) > 5  # one delta per token, then the answer
    assert "".join(d.text for d in deltas) == "The council will rebuild the lighthouse [1]."
    assert deltas[-1].answer.citations[0].supported


def test_llm_condenses_the_follow_up_before_retrieval(retriever: Retriever) -> None:
    llm = FakeListChatModel(responses=["How much will rebuilding the lighthouse cost?", "About two million euros [1]."])
    history = [{"role": "user", "content": "What will the council rebuild?"}, {"role": "assistant", "content": "The lighthouse."}]
    answer = Assistant(retriever, llm, k=1).ask("How much will it cost?", history=history)
    assert answer.passages[0].source.endswith("harbour.txt")
    assert answer.citations[0].supported
