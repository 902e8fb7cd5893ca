"""Follow-ups become standalone queries: by the documented heuristic, or by the LLM when there is one."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage

from rag.answering.conversation import heuristic_standalone, is_follow_up, llm_standalone, normalise_history

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
    assert query.startswith("When did he say it?")
    for carried in ("US-China", "AI", "safety", "talks", "Bessent"):
        assert carried in query


def test_short_follow_up_without_pronoun_carries_context() -> None:
    history = [{"role": "user", "content": "How do I read a file in Node.js?"}, {"role": "assistant", "content": "x"}]
    query = heuristic_standalone("and synchronously?", history)
    assert "file" in query and "Node.js" in query


def test_follow_up_of_a_follow_up_reaches_back_one_more_turn() -> None:
    history = HISTORY + [{"role": "user", "content": "When did he say it?"}, {"role": "assistant", "content": "In May."}]
    assert "safety" in heuristic_standalone("Where was that?", history)


def test_llm_rewrites_the_follow_up() -> None:
    llm = FakeListChatModel(responses=["When did Scott Bessent announce the US-China AI safety talks?"])
    assert llm_standalone("When did he say it?", HISTORY, llm) == "When did Scott Bessent announce the US-China AI safety talks?"


def test_llm_rambling_falls_back_to_the_heuristic() -> None:
    llm = FakeListChatModel(responses=["Sure! " + "blah " * 200])
    assert llm_standalone("When did he say it?", HISTORY, llm) == heuristic_standalone("When did he say it?", HISTORY)
