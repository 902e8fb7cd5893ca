"""Thumbs up and down on answers, and the form that asks what was wrong.

A thumb is stored at once (:func:`rag.service.record_feedback`), with the question, the
conversation before it, the standalone query, the passages shown, the answer and the settings it
was asked with, beside the index that answered. A thumbs-down opens a form for a note and,
optionally, the correct answer or the document that holds it; sending it updates the same record.
``rag eval --from-feedback`` turns the records into an answer suite.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from index.store import IndexStoreError
from rag import service
from rag.chatlog import Feedback
from ui import render
from ui.chat import Answers, ChatHandlers, Turn, plain_history
from ui.saved import Meta

logger = logging.getLogger(__name__)

_RATINGS = {True: "up", False: "down"}


class FeedbackHandlers:
    """The chatbot's ``like`` event and the what-was-wrong form."""

    def __init__(self, chat: ChatHandlers) -> None:
        self.chat = chat

    def _feedback(
        self, conversation: list[Turn], answers: Answers, index: int, rating: str, meta: Meta, user: str
    ) -> Feedback:
        turn = conversation[index]
        answer = answers[turn["answer_id"]]
        return Feedback(
            question=turn["question"],
            rating=rating,
            answer=answer.to_dict(),
            query=answer.query,
            history=plain_history(conversation[:index], answers),
            settings=dict(turn.get("settings") or {}),
            user=user,
            conversation_id=str((meta or {}).get("id") or ""),
            answer_id=turn["answer_id"],
            id=str(turn.get("feedback_id") or ""),
        )

    def _store(self, feedback: Feedback) -> Feedback:
        collection = self.chat.manager.get(feedback.settings.get("collection") or None)
        return service.record_feedback(collection, feedback)

    def rate(
        self, event: gr.LikeData, conversation: list[Turn], answers: Answers, meta: Meta, request: gr.Request
    ) -> tuple[Any, ...]:
        """A thumb was given or taken back; returns (conversation, form, form heading, note, correct answer,
        correct source, target, status)."""
        skip = (gr.skip(),) * 8
        message_index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        index = int(message_index) // 2  # each turn is a question and an answer
        if not 0 <= index < len(conversation) or conversation[index]["answer_id"] not in answers:
            return skip
        turn = dict(conversation[index])
        conversation = [*conversation[:index], turn, *conversation[index + 1 :]]
        user = getattr(request, "username", None) or ""
        hidden = gr.update(visible=False)
        try:
            if event.liked not in _RATINGS:  # the thumb was clicked again: taken back
                if turn.get("feedback_id"):
                    collection = self.chat.manager.get(turn.get("settings", {}).get("collection") or None)
                    service.withdraw_feedback(collection, turn["feedback_id"])
                turn.pop("feedback", None)
                turn.pop("feedback_id", None)
                return conversation, hidden, "", "", "", "", {}, ""
            rating = _RATINGS[event.liked]
            stored = self._store(self._feedback(conversation, answers, index, rating, meta, user))
        except (IndexStoreError, ValueError, OSError) as error:
            gr.Warning(f"Could not keep the feedback: {error}")
            return skip
        turn["feedback"], turn["feedback_id"] = rating, stored.id
        if rating == "up":
            return conversation, hidden, "", "", "", "", {}, '<p class="muted">Thanks: marked as a good answer.</p>'
        heading = (
            '<div class="feedback-heading">What was wrong with the answer to '
            f"“{render.escape(turn['question'])}”?</div>"
        )
        target = {"answer_id": turn["answer_id"], "feedback_id": stored.id}
        return conversation, gr.update(visible=True), heading, "", "", "", target, ""

    def send(
        self,
        target: dict[str, str],
        note: str,
        correct_answer: str,
        correct_source: str,
        conversation: list[Turn],
        answers: Answers,
        meta: Meta,
        request: gr.Request,
    ) -> tuple[Any, ...]:
        """Add the note and correction to the thumbs-down record; returns (form, target, status)."""
        index = next(
            (i for i, turn in enumerate(conversation) if turn["answer_id"] == (target or {}).get("answer_id")), None
        )
        if index is None or conversation[index]["answer_id"] not in answers:
            return gr.update(visible=False), {}, '<p class="muted">That answer is no longer in the conversation.</p>'
        user = getattr(request, "username", None) or ""
        feedback = self._feedback(conversation, answers, index, "down", meta, user)
        feedback.id = target.get("feedback_id") or feedback.id
        feedback.note = (note or "").strip()
        feedback.correct_answer = (correct_answer or "").strip()
        feedback.correct_source = (correct_source or "").strip()
        try:
            self._store(feedback)
        except (IndexStoreError, ValueError, OSError) as error:
            return gr.skip(), gr.skip(), f'<p class="error-text">{render.escape(str(error))}</p>'
        said = "with the correct answer" if feedback.correct_answer else "with the source" if feedback.correct_source else ""
        message = f"Thanks: the answer is marked wrong{' ' + said if said else ''}; `rag eval --from-feedback` will ask it again."
        return gr.update(visible=False), {}, f'<p class="muted" id="feedback-saved">{render.escape(message)}</p>'

    @staticmethod
    def close() -> tuple[Any, ...]:
        """Close the form without adding anything (the thumbs-down itself stays)."""
        return gr.update(visible=False), {}
