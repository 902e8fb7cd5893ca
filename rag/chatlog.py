"""What people said to the assistant, kept beside an index in ``chat.sqlite``: saved conversations and feedback.

Both are plain JSON in SQLite (never pickle), one file per index folder, so they move with the
index and a copy of the folder keeps them. Every call opens its own short connection, so the
page's threads and ``rag eval`` can use the file at once.

- :class:`ConversationStore`: a user's conversations (the chat page with ``--auth``). Every query
  is filtered by user, so one user never reads, renames or deletes another's.
- :class:`FeedbackStore`: thumbs up/down on answers, with the question, the standalone query,
  the passages shown, the answer and the settings, a note and an optional correction.
  ``rag eval --from-feedback`` turns them into an answer suite (:mod:`evals.feedback`).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> store = FeedbackStore(folder)
>>> saved = store.record(Feedback(question="When is the alarm code changed?", rating="down",
...                               answer={"text": "Never. [1]"}, correct_answer="every spring"))
>>> [(f.question, f.rating, f.correct_answer) for f in store.all()]
[('When is the alarm code changed?', 'down', 'every spring')]
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHATLOG_NAME = "chat.sqlite"
"""The file in an index folder that holds its conversations and feedback."""
RATINGS = ("up", "down")
MAX_TITLE_CHARS = 120

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    user TEXT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    updated REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (user, id)
);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    rating TEXT NOT NULL,
    data TEXT NOT NULL
);
"""


class ChatLogError(ValueError):
    """A record that cannot be stored as given (unknown rating, no question)."""


@contextmanager
def _connect(index_dir: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(Path(index_dir) / CHATLOG_NAME, timeout=10)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        with connection:  # one transaction, committed on success
            yield connection
    finally:
        connection.close()


def clean_title(title: str) -> str:
    """A conversation title: one line, at most ``MAX_TITLE_CHARS``.

    >>> clean_title("  How do I\\nadd files?  ")
    'How do I add files?'
    """
    flat = " ".join(str(title).split())
    return flat if len(flat) <= MAX_TITLE_CHARS else flat[: MAX_TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class ConversationSummary:
    """One line of a user's conversation list."""

    id: str
    title: str
    updated: float


class ConversationStore:
    """Saved conversations per user in ``<index_dir>/chat.sqlite``.

    A conversation is a JSON object with at least ``id`` and ``title``; the page keeps its turns
    (questions and answers with their citations) in it. ``user`` is the login name.
    """

    def __init__(self, index_dir: str | Path) -> None:
        self.index_dir = Path(index_dir)

    def save(self, user: str, conversation: dict[str, Any]) -> None:
        """Insert or replace ``conversation`` (by its ``id``) for ``user``."""
        conversation_id = str(conversation.get("id") or "")
        if not conversation_id:
            raise ChatLogError("a conversation needs an id")
        title = clean_title(conversation.get("title") or "Untitled")
        with _connect(self.index_dir) as db:
            db.execute(
                "INSERT INTO conversations (user, id, title, updated, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(user, id) DO UPDATE SET title = excluded.title, updated = excluded.updated, "
                "data = excluded.data",
                (user, conversation_id, title, time.time(), json.dumps({**conversation, "title": title})),
            )

    def summaries(self, user: str) -> list[ConversationSummary]:
        """``user``'s conversations, the most recently changed first."""
        with _connect(self.index_dir) as db:
            rows = db.execute(
                "SELECT id, title, updated FROM conversations WHERE user = ? ORDER BY updated DESC", (user,)
            ).fetchall()
        return [ConversationSummary(*row) for row in rows]

    def get(self, user: str, conversation_id: str) -> dict[str, Any] | None:
        """``user``'s conversation ``conversation_id``, or None (also when it is someone else's)."""
        with _connect(self.index_dir) as db:
            row = db.execute(
                "SELECT data FROM conversations WHERE user = ? AND id = ?", (user, conversation_id)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def rename(self, user: str, conversation_id: str, title: str) -> bool:
        """Give ``user``'s conversation a new title; False when there is no such conversation."""
        conversation = self.get(user, conversation_id)
        if conversation is None:
            return False
        self.save(user, {**conversation, "title": title})
        return True

    def delete(self, user: str, conversation_id: str) -> bool:
        """Delete ``user``'s conversation; False when there was none."""
        with _connect(self.index_dir) as db:
            cursor = db.execute("DELETE FROM conversations WHERE user = ? AND id = ?", (user, conversation_id))
        return cursor.rowcount > 0


@dataclass
class Feedback:
    """A user's judgement of one answer, with everything needed to ask the question again.

    ``rating`` is ``"up"`` or ``"down"``; ``note`` says what was wrong; ``correct_answer`` (a short
    answer the reply should contain) and ``correct_source`` (a file the reply should cite, as a
    path or its end, e.g. ``guide/setup.md``) are optional corrections. ``history`` is the
    conversation before the question (``{"role", "content"}`` messages), ``query`` the standalone
    query retrieval used, ``answer`` the answer as ``Answer.to_dict()`` (its passages are the ones
    shown), ``settings`` the collection, retrieval mode, k and backend.
    """

    question: str
    rating: str
    answer: dict[str, Any] = field(default_factory=dict)
    query: str = ""
    history: list[dict[str, str]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    correct_answer: str = ""
    correct_source: str = ""
    user: str = ""
    conversation_id: str = ""
    answer_id: str = ""
    id: str = ""
    created: float = 0.0
    updated: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Feedback:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


class FeedbackStore:
    """Feedback on answers in ``<index_dir>/chat.sqlite``, the index the questions were asked of."""

    def __init__(self, index_dir: str | Path) -> None:
        self.index_dir = Path(index_dir)

    def record(self, feedback: Feedback) -> Feedback:
        """Store ``feedback`` (replacing the record with its ``id``, if any); returns it with id and times set."""
        if feedback.rating not in RATINGS:
            raise ChatLogError(f"rating must be one of {', '.join(RATINGS)}; got {feedback.rating!r}")
        if not feedback.question.strip():
            raise ChatLogError("feedback needs the question it is about")
        now = time.time()
        feedback.id = feedback.id or uuid.uuid4().hex[:16]
        feedback.created = feedback.created or now
        feedback.updated = now
        with _connect(self.index_dir) as db:
            db.execute(
                "INSERT INTO feedback (id, created, updated, rating, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET updated = excluded.updated, rating = excluded.rating, "
                "data = excluded.data",
                (feedback.id, feedback.created, feedback.updated, feedback.rating, json.dumps(feedback.to_dict())),
            )
        return feedback

    def get(self, feedback_id: str) -> Feedback | None:
        with _connect(self.index_dir) as db:
            row = db.execute("SELECT data FROM feedback WHERE id = ?", (feedback_id,)).fetchone()
        return Feedback.from_dict(json.loads(row[0])) if row else None

    def delete(self, feedback_id: str) -> bool:
        """Forget a judgement (the user took the thumb back)."""
        with _connect(self.index_dir) as db:
            cursor = db.execute("DELETE FROM feedback WHERE id = ?", (feedback_id,))
        return cursor.rowcount > 0

    def all(self) -> list[Feedback]:
        """Every judgement, oldest first. Nothing is created when the index folder has no chat log yet."""
        if not (self.index_dir / CHATLOG_NAME).is_file():
            return []
        with _connect(self.index_dir) as db:
            rows = db.execute("SELECT data FROM feedback ORDER BY created, id").fetchall()
        return [Feedback.from_dict(json.loads(row[0])) for row in rows]
