"""Follow-ups become standalone queries: by the documented heuristic, or by the LLM when there is one."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage

from rag.answering.conversation import (
    heuristic_standalone,
    is_follow_up,
    llm_standalone,
    normalise_history,
    resolve_follow_up,
)

HISTORY = [
    {"role": "user", "content": "Who announced the US-China AI safety talks?"},
    {"role": "assistant", "content": "Treasury Secretary Scott Bessent confirmed the talks [1]."},
]


def test_history_accepts_messages_pairs_and_langchain_messages() -> None:
    expected = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert normalise_history([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == expected
    assert normalise_history([("q", "a")]) == expected
    assert normalise_history([["q", "a"]]) == expected
    assert normalise_history([HumanMessage("q"), AIMessage("a")]) == expected
    assert normalise_history(None) == []


def test_gradio_content_parts_are_read_as_text() -> None:
    assert normalise_history([{"role": "user", "content": [{"type": "text", "text": "hello"}]}]) == [
        {"role": "user", "content": "hello"}
    ]


def test_bad_history_entry_is_rejected() -> None:
    with pytest.raises(ValueError, match="history"):
        normalise_history([42])
    with pytest.raises(ValueError, match="role"):
        normalise_history([{"role": "robot", "content": "x"}])


def test_standalone_question_is_left_alone() -> None:
    question = "When will the US and China hold the first AI safety meeting?"
    assert not is_follow_up(question)
    assert heuristic_standalone(question, HISTORY) == question


def test_pronoun_follow_up_carries_the_previous_question_and_the_named_person() -> None:
    query = heuristic_standalone("When did he say it?", HISTORY)
    # "he" is the person the previous answer names, in his place; the previous question is carried.
    assert query.startswith("When did Treasury Secretary Scott Bessent say it?")
    for carried in ("US-China", "AI", "safety", "talks"):
        assert carried in query
    assert query.count("Bessent") == 1


def _after(previous: str, answer: str = "An answer [1].") -> list[dict[str, str]]:
    return [{"role": "user", "content": previous}, {"role": "assistant", "content": answer}]


def test_it_is_the_object_of_the_previous_how_to_question_not_its_action() -> None:
    # Asking for the counterpart action (close/open, remove/listen): "it" is what the previous question acted
    # on; the previous verb and the adverbs that went with it ("only once") are not carried, its places are.
    follow_up = resolve_follow_up("How do I close it?", _after("How do I open a file in Python?"))
    assert (follow_up.resolved, follow_up.antecedent, follow_up.context) == ("How do I close a file?", "a file", "Python")
    follow_up = resolve_follow_up("How do I remove it again?", _after("How do I listen for an event only once in Node.js?"))
    assert follow_up.resolved == "How do I remove an event again?"
    assert "listen" not in follow_up.query and "once" not in follow_up.query and "Node.js" in follow_up.context
    # The answer is scored against the question as asked first, then what it refers to.
    assert follow_up.scored == "How do I remove it again? an event Node.js"
    follow_up = resolve_follow_up("And how do I remove them?", _after("How do I add files to the index?"))
    assert follow_up.resolved == "And how do I remove files?" and follow_up.context == "index"


def test_a_thing_is_the_subject_of_a_previous_how_is_or_what_is_question() -> None:
    follow_up = resolve_follow_up("What happens when one is not supported?", _after("How are citations checked?"))
    assert follow_up.antecedent == "citations"
    follow_up = resolve_follow_up("How much will rebuilding it cost?", _after("Why was the lighthouse on the north pier dark?"))
    assert follow_up.resolved == "How much will rebuilding the lighthouse cost?" and "pier" in follow_up.context
    assert resolve_follow_up("What does it return?", _after("What does fs.readFile() do?")).antecedent == "fs.readFile()"


def test_he_is_the_person_the_previous_question_names() -> None:
    history = _after("What did Bessent say about the talks?", "Treasury Secretary Scott Bessent framed them [1].")
    follow_up = resolve_follow_up("Which network did he tell?", history)
    assert follow_up.resolved == "Which network did Bessent tell?"
    assert "talks" in follow_up.context


def test_a_pronoun_without_a_known_antecedent_is_left_with_the_previous_question_carried() -> None:
    # "it" is the watching, not the file: only a follow-up that acts on something takes the previous object.
    follow_up = resolve_follow_up("Does it work on Windows?", _after("How do I watch a file for changes in Node.js?"))
    assert follow_up.resolved == "Does it work on Windows?" and not follow_up.antecedent
    assert follow_up.context == "watch file changes Node.js"
    # "Which one" is no pronoun.
    assert resolve_follow_up("Which one is faster?", _after("How do I read a file synchronously or asynchronously?")).resolved == (
        "Which one is faster?"
    )


def test_llm_rewrites_the_follow_up() -> None:
    llm = FakeListChatModel(responses=["When did Scott Bessent announce the US-China AI safety talks?"])
    assert llm_standalone("When did he say it?", HISTORY, llm) == "When did Scott Bessent announce the US-China AI safety talks?"


def test_llm_rambling_falls_back_to_the_heuristic() -> None:
    llm = FakeListChatModel(responses=["Sure! " + "blah " * 200])
    assert llm_standalone("When did he say it?", HISTORY, llm) == heuristic_standalone("When did he say it?", HISTORY)
