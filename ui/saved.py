"""Saved conversations: listed in the sidebar, reopened, renamed, deleted, exported.

Without a login they are kept in the browser (Gradio's ``BrowserState``: the browser's local
storage, encrypted with a key kept in the index folder, so a server restart can still read them);
with ``--auth`` on the server, per user, in the index folder's ``chat.sqlite``
(:class:`rag.chatlog.ConversationStore`), and the browser keeps none of them, so two people who
share a browser do not see each other's.

A saved conversation is plain JSON (:func:`to_record`): its id, title, collection and turns, each
turn with its answer as ``Answer.to_dict()``, which is what the citations and the sources panel
are rendered from when it is reopened.

>>> meta = new_meta("/data/notes")
>>> record = to_record(meta, [{"question": "Why?", "answer_id": "a1"}], {})
>>> record["title"], from_record(record)[1][0]["question"]
('Why?', 'Why?')
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import gradio as gr

from rag import service
from rag.chatlog import clean_title
from rag.types import Answer
from ui import export
from ui.chat import Answers, ChatHandlers, Turn

logger = logging.getLogger(__name__)

BROWSER_STORAGE_KEY = "rag-assistant-conversations"
BROWSER_SECRET_FILE = ".browser-secret"
"""In the index folder: the key the browser's copy of the conversations is encrypted with."""
MAX_BROWSER_CONVERSATIONS = 50
MAX_BROWSER_CHARS = 2_000_000
"""Browsers give a page about 5 MB of local storage; encryption and encoding take a good part of it,
so the oldest conversations are dropped beyond this much JSON."""
LIST_TITLE_CHARS = 60
UNREADABLE = "This answer could not be read back from the saved conversation."

Meta = dict[str, Any]
"""The open conversation: ``{"id", "title", "collection", "created", "renamed"}``."""


def new_meta(collection_dir: str | None) -> Meta:
    """A new, empty conversation on ``collection_dir``."""
    return {"id": uuid.uuid4().hex[:16], "title": "", "collection": str(collection_dir or ""), "created": time.time()}


def title_of(meta: Meta, conversation: list[Turn]) -> str:
    """The title a user gave, else the first question."""
    if meta.get("renamed") and meta.get("title"):
        return clean_title(meta["title"])
    return clean_title(conversation[0]["question"]) if conversation else "New conversation"


def to_record(meta: Meta, conversation: list[Turn], answers: Answers) -> dict[str, Any]:
    """The conversation as JSON: what is saved, in the browser or on the server."""
    turns = []
    for turn in conversation:
        answer = answers.get(turn["answer_id"])
        turns.append({**turn, "answer": answer.to_dict() if answer else None})
    return {**meta, "title": title_of(meta, conversation), "updated": time.time(), "turns": turns}


def from_record(record: dict[str, Any]) -> tuple[Meta, list[Turn], Answers]:
    """(meta, conversation, answers) of a saved conversation; an answer that cannot be read becomes an error turn."""
    meta = {key: record.get(key) for key in ("id", "title", "collection", "created", "renamed")}
    conversation: list[Turn] = []
    answers: Answers = {}
    for saved in record.get("turns") or []:
        if not isinstance(saved, dict) or not saved.get("question"):
            continue
        turn = {key: value for key, value in saved.items() if key != "answer"}
        turn["answer_id"] = str(turn.get("answer_id") or uuid.uuid4().hex[:12])
        if saved.get("answer"):
            try:
                answers[turn["answer_id"]] = Answer.from_dict(saved["answer"])
            except (KeyError, TypeError, ValueError):
                turn["error"] = UNREADABLE
        conversation.append(turn)
    return meta, conversation, answers


def upsert_browser(saved: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The browser's conversations with ``record`` first (replacing its older copy), trimmed to fit.

    >>> saved = upsert_browser(None, {"id": "a", "title": "A"})
    >>> [c["id"] for c in upsert_browser(saved, {"id": "b", "title": "B"})["conversations"]]
    ['b', 'a']
    """
    others = [c for c in browser_conversations(saved) if c.get("id") != record["id"]]
    kept = [record]
    size = len(json.dumps(record))
    for conversation in others[: MAX_BROWSER_CONVERSATIONS - 1]:
        size += len(json.dumps(conversation))
        if size > MAX_BROWSER_CHARS:
            break
        kept.append(conversation)
    return {"conversations": kept}


def browser_conversations(saved: Any) -> list[dict[str, Any]]:
    """The conversations in the browser's storage, most recent first (anything malformed is ignored)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("conversations"), list):
        return []
    return [c for c in saved["conversations"] if isinstance(c, dict) and c.get("id")]


def browser_secret(index_dir: Path) -> str:
    """The key the browser's conversations are encrypted with: made once and kept in the index folder.

    Gradio would otherwise make a new key at every start, and a restarted server could not read
    what the browser kept. Falls back to a key for this run alone when the folder is read-only.
    """
    path = Path(index_dir) / BROWSER_SECRET_FILE
    try:
        secret = path.read_text(encoding="utf-8").strip()
        if secret:
            return secret
    except OSError:
        pass
    secret = secrets.token_urlsafe(24)
    try:
        path.write_text(secret, encoding="utf-8")
        path.chmod(0o600)
    except OSError as error:
        logger.warning("cannot keep the browser storage key in %s (%s): saved conversations last until a restart", path, error)
    return secret


def _list_title(title: str) -> str:
    return title if len(title) <= LIST_TITLE_CHARS else title[: LIST_TITLE_CHARS - 1].rstrip() + "…"


def _user(request: gr.Request | None) -> str | None:
    """The login name with ``--auth``, None without a login (conversations then live in the browser)."""
    return getattr(request, "username", None) or None


class SavedConversationHandlers:
    """Handlers of the conversation list: save after every change, reopen, rename, delete, start anew."""

    def __init__(self, chat: ChatHandlers) -> None:
        self.chat = chat
        self.manager = chat.manager
        self.store = service.conversations(self.manager.default_dir)
        self._exports = Path(tempfile.mkdtemp(prefix="rag-assistant-exports-"))

    # ---- listing ------------------------------------------------------------------------------

    def _summaries(self, user: str | None, saved: Any) -> list[tuple[str, str]]:
        if user is not None:
            return [(_list_title(s.title), s.id) for s in self.store.summaries(user)]
        return [(_list_title(clean_title(c.get("title") or "Untitled")), str(c["id"])) for c in browser_conversations(saved)]

    def _list(self, user: str | None, saved: Any, current: str | None) -> dict[str, Any]:
        choices = self._summaries(user, saved)
        value = current if current in {id_ for _, id_ in choices} else None
        return gr.update(choices=choices, value=value)

    def _record(self, user: str | None, saved: Any, conversation_id: str) -> dict[str, Any] | None:
        if user is not None:
            return self.store.get(user, conversation_id)
        return next((c for c in browser_conversations(saved) if c["id"] == conversation_id), None)

    # ---- saving -------------------------------------------------------------------------------

    def persist(
        self, conversation: list[Turn], answers: Answers, meta: Meta, saved: Any, request: gr.Request
    ) -> tuple[Any, ...]:
        """Save the open conversation after a change; returns (meta, browser storage, list, export button)."""
        user = _user(request)
        meta = dict(meta or {}) or new_meta(str(self.manager.default_dir))
        if not conversation:
            # Undo emptied it: an empty conversation is not worth a line in the list.
            saved_update = self._forget(user, saved, str(meta["id"]))
            saved = saved if saved_update == gr.skip() else saved_update
            return meta, saved_update, self._list(user, saved, None), self._export_button(None)
        record = to_record(meta, conversation, answers)
        meta["title"] = record["title"]
        if user is not None:
            self.store.save(user, record)
            saved_update: Any = gr.skip()  # with a login nothing is kept in the browser
        else:
            saved = upsert_browser(saved, record)
            saved_update = saved
        path = self._write_export(meta, conversation, answers)
        return meta, saved_update, self._list(user, saved, meta["id"]), self._export_button(path)

    def _write_export(self, meta: Meta, conversation: list[Turn], answers: Answers) -> Path:
        collection = meta.get("collection") or None
        folders = self.chat.folders(collection)
        exchanges = [(t["question"], answers.get(t["answer_id"]), t.get("error", "")) for t in conversation]
        name = Path(collection).name if collection else ""
        markdown = export.conversation_markdown(title_of(meta, conversation), exchanges, folders, name)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title_of(meta, conversation)).strip("-").lower()[:48] or "conversation"
        folder = self._exports / str(meta["id"])
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.md"):
            old.unlink()
        path = folder / f"{slug}.md"
        path.write_text(markdown, encoding="utf-8")
        return path

    @staticmethod
    def _export_button(path: Path | None) -> dict[str, Any]:
        return gr.update(value=str(path) if path else None, interactive=path is not None)

    # ---- opening ------------------------------------------------------------------------------

    def _opened(self, meta: Meta, conversation: list[Turn], answers: Answers, user: str | None, saved: Any) -> tuple[Any, ...]:
        """(chatbot, sources, conversation, answers, meta, collection, title box, list, export button)."""
        collection_dir = meta.get("collection") or None
        known = {path for _, path in self.manager.choices()}
        if collection_dir not in known:
            collection_dir = None  # a collection that is gone: the answers still show, follow-ups go to the current one
        path = self._write_export(meta, conversation, answers) if conversation else None
        return (
            self.chat.view(conversation, answers, collection_dir),
            self.chat.panel(conversation, answers, collection_dir),
            conversation,
            answers,
            meta,
            gr.update(value=collection_dir) if collection_dir else gr.skip(),
            title_of(meta, conversation) if conversation else "",
            self._list(user, saved, meta.get("id")),
            self._export_button(path),
        )

    def reopen(self, conversation_id: str | None, saved: Any, request: gr.Request) -> tuple[Any, ...]:
        """Open a conversation from the list (see ``_opened`` for what is returned)."""
        user = _user(request)
        record = self._record(user, saved, conversation_id) if conversation_id else None
        if record is None:
            gr.Warning("That conversation is no longer saved.")
            return (gr.skip(),) * 7 + (self._list(user, saved, None), gr.skip())
        return self._opened(*from_record(record), user, saved)

    def load(self, saved: Any, collection_dir: str, conversation: list[Turn], request: gr.Request) -> tuple[Any, ...]:
        """On page load: reopen the most recent conversation, if any (so a reload keeps it), and list them all.

        If a question was asked before this ran (a quick user on a busy server), that conversation stays.
        """
        user = _user(request)
        if conversation:
            return (gr.skip(),) * 7 + (self._list(user, saved, None), gr.skip())
        choices = self._summaries(user, saved)
        record = self._record(user, saved, choices[0][1]) if choices else None
        if record is None:
            meta = new_meta(collection_dir)
            return self._opened(meta, [], {}, user, saved)
        return self._opened(*from_record(record), user, saved)

    def new(self, collection_dir: str, saved: Any, request: gr.Request) -> tuple[Any, ...]:
        """Start a new, empty conversation; the one that was open stays saved."""
        return self._opened(new_meta(collection_dir), [], {}, _user(request), saved)

    # ---- editing ------------------------------------------------------------------------------

    def rename(
        self, title: str, conversation: list[Turn], answers: Answers, meta: Meta, saved: Any, request: gr.Request
    ) -> tuple[Any, ...]:
        """Give the open conversation a title of the user's; returns (meta, browser storage, list, export button)."""
        title = clean_title(title or "")
        if not title or not conversation:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        meta = {**meta, "title": title, "renamed": True}
        return self.persist(conversation, answers, meta, saved, request)

    def delete(self, meta: Meta, collection_dir: str, saved: Any, request: gr.Request) -> tuple[Any, ...]:
        """Delete the open conversation and start a new one; returns the outputs of ``new`` and the browser storage."""
        user = _user(request)
        saved_update = self._forget(user, saved, str((meta or {}).get("id") or ""))
        saved = saved if saved_update == gr.skip() else saved_update
        return (*self._opened(new_meta(collection_dir), [], {}, user, saved), saved_update)

    def _forget(self, user: str | None, saved: Any, conversation_id: str) -> Any:
        """Delete a saved conversation; returns the browser storage's new value (or a skip, with a login)."""
        if user is not None:
            self.store.delete(user, conversation_id)
            return gr.skip()
        return {"conversations": [c for c in browser_conversations(saved) if c["id"] != conversation_id]}

