"""Saved conversations and feedback beside an index (``rag/chatlog.py``): per user, plain JSON in SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag.chatlog import CHATLOG_NAME, ChatLogError, ConversationStore, Feedback, FeedbackStore
from rag.types import Answer, Citation


def test_one_user_never_sees_another_users_conversations(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    store.save("ada", {"id": "c1", "title": "Kettles", "turns": [{"question": "When does it stop?"}]})
    store.save("bob", {"id": "c2", "title": "Tomatoes", "turns": []})

    assert [s.title for s in store.summaries("ada")] == ["Kettles"]
    assert [s.title for s in store.summaries("bob")] == ["Tomatoes"]
    assert store.get("bob", "c1") is None
    assert not store.rename("bob", "c1", "mine now") and not store.delete("bob", "c1")
    assert store.get("ada", "c1")["turns"][0]["question"] == "When does it stop?"


def test_the_same_id_for_two_users_is_two_conversations(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    store.save("ada", {"id": "same", "title": "Ada's"})
    store.save("bob", {"id": "same", "title": "Bob's"})
    assert store.get("ada", "same")["title"] == "Ada's" and store.get("bob", "same")["title"] == "Bob's"
    assert store.delete("ada", "same") and store.get("bob", "same") is not None


def test_conversations_survive_reopening_the_store_most_recent_first(tmp_path: Path) -> None:
    ConversationStore(tmp_path).save("ada", {"id": "old", "title": "Old"})
    ConversationStore(tmp_path).save("ada", {"id": "new", "title": "New"})
    ConversationStore(tmp_path).rename("ada", "old", "  Old,\nrenamed  ")
    assert [(s.id, s.title) for s in ConversationStore(tmp_path).summaries("ada")] == [
        ("old", "Old, renamed"),
        ("new", "New"),
    ]


def test_records_are_json_never_pickle(tmp_path: Path) -> None:
    ConversationStore(tmp_path).save("ada", {"id": "c1", "title": "T"})
    FeedbackStore(tmp_path).record(Feedback(question="Q?", rating="up"))
    with sqlite3.connect(tmp_path / CHATLOG_NAME) as db:
        blobs = [row[0] for row in db.execute("SELECT data FROM conversations UNION ALL SELECT data FROM feedback")]
    assert all(isinstance(blob, str) and blob.startswith("{") for blob in blobs)


def test_feedback_keeps_the_answer_and_is_updated_in_place(tmp_path: Path) -> None:
    answer = Answer(
        text="It switches off when the water boils. [1]",
        citations=[Citation(1, "/n/kettle.txt", "c1", "/n/kettle.txt", "Kettle", None, 14, 50, "switches itself off")],
        query="When does the kettle switch off?",
    )
    store = FeedbackStore(tmp_path)
    first = store.record(Feedback(question="When does it stop?", rating="down", answer=answer.to_dict(), query=answer.query))
    store.record(Feedback(question="When does it stop?", rating="down", note="wrong kettle", id=first.id, created=first.created))

    [kept] = store.all()
    assert kept.id == first.id and kept.note == "wrong kettle"
    assert store.delete(first.id) and store.all() == []
    assert Answer.from_dict(first.answer) == answer


def test_feedback_without_a_question_or_with_an_unknown_rating_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChatLogError, match="rating"):
        FeedbackStore(tmp_path).record(Feedback(question="Q?", rating="meh"))
    with pytest.raises(ChatLogError, match="question"):
        FeedbackStore(tmp_path).record(Feedback(question=" ", rating="up"))


def test_reading_feedback_of_an_index_without_any_creates_nothing(tmp_path: Path) -> None:
    assert FeedbackStore(tmp_path).all() == []
    assert not (tmp_path / CHATLOG_NAME).exists()
