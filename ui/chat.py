"""The conversation: streaming answers, stop, the sources panel, retry/undo, and the JSON ``ask`` API.

Handlers are plain functions of the session's state: ``conversation`` (a list of turns, each a
question, the id of its answer and the settings it was asked with) and ``answers`` (Answer by id).
The chatbot's messages are rendered from that state, so undo and retry never have to parse HTML
back. Saving conversations is :mod:`ui.saved`'s job, feedback :mod:`ui.feedback`'s.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from index.store import IndexStoreError
from rag import service
from rag.retrieval.retriever import SEARCH_MODES
from rag.service import DEFAULT_K, MAX_K, AssistantPool, Backends, EmptyIndexError
from rag.types import Answer
from ui import export, render
from ui.collections import CollectionManager

logger = logging.getLogger(__name__)

DEFAULT_MODE = "hybrid"
WORD_INTERVAL_SECONDS = 0.012
"""Pace of the streamed text: the extractive answerer yields whole sentences at once, and a
sentence appearing word by word is easier to follow (and what the user guide promises). A
language model slower than this is never delayed."""
_WORDS = re.compile(r"\s*\S+\s*|\s+")

Turn = dict[str, Any]
"""One exchange: ``{"question", "answer_id", "settings"}``, plus ``"error"`` when no answer came and
``"feedback"`` (``"up"``/``"down"``) with ``"feedback_id"`` once the user judged the answer.
``settings`` holds the ``collection``, ``mode``, ``k`` and ``backend`` it was asked with."""
STOPPED = "Stopped before the answer was finished: Retry asks again."
Answers = dict[str, Answer]


class UserFacingError(Exception):
    """Something the user can fix (empty collection, backend down): shown in the chat as one line."""


def plain_history(conversation: list[Turn], answers: Answers) -> list[dict[str, str]]:
    """The conversation as Gradio-6 messages of plain text, what ``Assistant`` expects."""
    history: list[dict[str, str]] = []
    for turn in conversation:
        answer = answers.get(turn["answer_id"])
        if answer is None:
            continue  # a failed turn gave nothing to follow up on
        history.append({"role": "user", "content": turn["question"]})
        history.append({"role": "assistant", "content": answer.text})
    return history


def chat_messages(conversation: list[Turn], answers: Answers, folders: Sequence[str] = ()) -> list[dict[str, str]]:
    """The chatbot's messages, rendered from the conversation; each answer carries its copy button."""
    messages = []
    for turn in conversation:
        messages.append({"role": "user", "content": render.question_html(turn["question"])})
        answer = answers.get(turn["answer_id"])
        if answer is None:
            error = turn.get("error", "")
            content = render.error_html(error, "Stopped" if error == STOPPED else "Could not answer")
        else:
            markdown = export.answer_markdown(turn["question"], answer, folders)
            content = render.answer_html(answer, turn["answer_id"]) + render.answer_tools_html(turn["answer_id"], markdown)
        messages.append({"role": "assistant", "content": content})
    return messages


def feedback_values(conversation: list[Turn]) -> list[str | None]:
    """The thumbs each answer shows (the chatbot's ``feedback_value``), one entry per turn."""
    return [{"up": "Like", "down": "Dislike"}.get(turn.get("feedback", "")) for turn in conversation]


def chat_view(conversation: list[Turn], answers: Answers, folders: Sequence[str] = ()) -> dict[str, Any]:
    """The chatbot's update: its messages and the thumbs given, so a reopened conversation shows both."""
    return gr.update(value=chat_messages(conversation, answers, folders), feedback_value=feedback_values(conversation))


def clamp_settings(mode: str, k: float) -> tuple[str, int]:
    """Settings from the page made safe: an unknown mode is the default, k within 1..MAX_K."""
    return (mode if mode in SEARCH_MODES else DEFAULT_MODE), min(max(int(k), 1), MAX_K)


class ChatHandlers:
    """The chat's event handlers, bound to the shared collections and backends."""

    def __init__(self, manager: CollectionManager, backends: Backends) -> None:
        self.manager = manager
        self.backends = backends
        self.assistants = AssistantPool(backends)
        # Browser tabs (Gradio session hashes) whose answer should stop. Gradio's own cancelling of a
        # running event proved unreliable here (the cancelled answer's last message sometimes stayed
        # on screen and the conversation lost the question), so the answer stops itself, between
        # two words, and records the turn like any other.
        self._stops: set[str] = set()

    def folders(self, collection_dir: str | None) -> list[str]:
        """The folders of a collection's documents (sources are shown relative to them); none if it cannot open."""
        try:
            return service.added_folders(self.manager.get(collection_dir))
        except (IndexStoreError, ValueError, OSError):
            return []

    def view(self, conversation: list[Turn], answers: Answers, collection_dir: str | None) -> dict[str, Any]:
        """The chatbot's update for ``conversation`` (see :func:`chat_view`)."""
        return chat_view(conversation, answers, self.folders(collection_dir))

    def panel(
        self, conversation: list[Turn], answers: Answers, collection_dir: str | None, answer_id: str | None = None
    ) -> str:
        """The sources panel for ``answer_id`` (default: the last answer), or the empty panel."""
        for turn in reversed(conversation):
            if turn["answer_id"] in answers and answer_id in (None, turn["answer_id"]):
                answer = answers[turn["answer_id"]]
                return render.sources_html(
                    answer, turn["answer_id"], turn["question"], folders=self.folders(collection_dir)
                )
        return render.empty_sources_html()

    # ---- asking ---------------------------------------------------------------------------

    def respond(
        self,
        question: str,
        conversation: list[Turn],
        answers: Answers,
        collection_dir: str,
        mode: str,
        k: float,
        backend: str,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream an answer; yields (chatbot, sources panel, conversation, answers, question box).

        Stop (:meth:`stop`) ends it between two words: the question stays, as a turn without an
        answer that Retry asks again.
        """
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), conversation, answers, gr.skip()
            return
        session = _session(request)
        self._stops.discard(session)  # a Stop clicked while nothing was being answered is forgotten
        folders = self.folders(collection_dir)
        shown = chat_messages(conversation, answers, folders) + [
            {"role": "user", "content": render.question_html(question)},
            {"role": "assistant", "content": render.thinking_html()},
        ]
        yield shown, gr.skip(), conversation, answers, ""
        answer: Answer | None = None
        error = ""
        stream = self._stream(question, plain_history(conversation, answers), collection_dir, mode, k, backend)
        try:
            for text, answer in stream:
                if session is not None and session in self._stops:
                    answer, error = None, STOPPED
                    break
                if answer is None:
                    shown = [*shown[:-1], {"role": "assistant", "content": render.streaming_html(text)}]
                    yield shown, gr.skip(), conversation, answers, ""
        except UserFacingError as failure:
            error = str(failure)
        finally:
            stream.close()  # after a Stop this ends a language model's request too
            self._stops.discard(session)
        turn = new_turn(question, collection_dir, mode, k, self.backends.label(backend))
        answers = dict(answers)
        if answer is not None:
            answers[turn["answer_id"]] = answer
            panel = render.sources_html(answer, turn["answer_id"], question, folders=folders)
        else:
            turn["error"] = error or "The assistant gave no answer."
            panel = render.empty_sources_html()
        conversation = conversation + [turn]
        yield chat_view(conversation, answers, folders), panel, conversation, answers, ""

    def stop(self, request: gr.Request | None = None) -> None:
        """Ask the answer being written in this browser tab to stop (see :meth:`respond`)."""
        session = _session(request)
        if session is not None:
            self._stops.add(session)

    def _stream(
        self, question: str, history: list[dict[str, str]], collection_dir: str, mode: str, k: float, backend: str
    ) -> Iterator[tuple[str, Answer | None]]:
        """(text so far, None) while the answer is written, then (text, the checked Answer)."""
        mode, top_k = clamp_settings(mode, k)
        try:
            collection = self.manager.get(collection_dir)
        except (IndexStoreError, ValueError, OSError) as error:
            raise UserFacingError(str(error)) from None
        text = ""
        pacer = _Pacer()
        try:
            for delta in service.stream_answer(
                collection, self.assistants, question, history, k=top_k, mode=mode, backend=backend
            ):
                for grown in pacer.words(text, delta.text):
                    yield grown, None
                text += delta.text
                if delta.answer is not None:
                    yield text, delta.answer
                    return
        except EmptyIndexError:
            raise UserFacingError("This collection has no documents yet: add some in the Documents tab.") from None
        except (IndexStoreError, ValueError) as error:
            # ValueError here is a bad LLM configuration (LlmConfigError) or an empty question.
            raise UserFacingError(str(error)) from None
        except Exception as error:
            if self.backends.llm(backend) is None:
                raise  # the extractive answerer failing is a bug: do not dress it up
            # A language model server that is down or misconfigured is the user's to fix.
            logger.exception("answer backend %s failed", backend)
            raise UserFacingError(f"{self.backends.label(backend)} failed: {error}") from None

    def respond_to_example(
        self,
        event: gr.SelectData,
        conversation: list[Turn],
        answers: Answers,
        collection_dir: str,
        mode: str,
        k: float,
        backend: str,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Ask the example question the user clicked."""
        example = event.value if isinstance(event.value, dict) else {}
        question = str(example.get("text", ""))
        yield from self.respond(question, conversation, answers, collection_dir, mode, k, backend, request)

    # ---- editing the conversation ---------------------------------------------------------

    def retry(
        self,
        conversation: list[Turn],
        answers: Answers,
        collection_dir: str,
        mode: str,
        k: float,
        backend: str,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Ask the last question again (after changing settings, say) in place of its answer; the
        earlier turns stay as they were."""
        if not conversation:
            yield gr.skip(), gr.skip(), conversation, answers, gr.skip()
            return
        last = conversation[-1]
        yield from self.respond(last["question"], conversation[:-1], answers, collection_dir, mode, k, backend, request)

    def undo(self, conversation: list[Turn], answers: Answers, collection_dir: str) -> tuple[Any, ...]:
        """Drop the last exchange and put its question back in the box for editing."""
        if not conversation:
            return gr.skip(), gr.skip(), conversation, answers, gr.skip()
        removed, conversation = conversation[-1], conversation[:-1]
        answers = {key: value for key, value in answers.items() if key != removed["answer_id"]}
        panel = self.panel(conversation, answers, collection_dir)
        return self.view(conversation, answers, collection_dir), panel, conversation, answers, removed["question"]

    # ---- sources --------------------------------------------------------------------------

    def show_source(
        self, event: gr.EventData, conversation: list[Turn], answers: Answers, collection_dir: str | None = None
    ) -> Any:
        """The sources panel for a clicked marker; ``event`` carries ``answer_id`` and ``marker``."""
        answer_id = str(getattr(event, "answer_id", "") or "")
        try:
            marker = int(getattr(event, "marker", 0))
        except (TypeError, ValueError):
            return gr.skip()
        answer = answers.get(answer_id)
        if answer is None:
            return gr.skip()  # a link in an answer that was undone: nothing to show
        question = next((t["question"] for t in conversation if t["answer_id"] == answer_id), "")
        return render.sources_html(answer, answer_id, question, selected=marker, folders=self.folders(collection_dir))

    # ---- API ------------------------------------------------------------------------------

    def ask_api(
        self,
        question: str,
        history: list[dict[str, str]] | None = None,
        mode: str = DEFAULT_MODE,
        k: int = DEFAULT_K,
        collection: str = "",
    ) -> dict[str, Any]:
        """Answer a question from the documents, citing its sources.

        Returns the answer as JSON: ``text`` with [n] markers, ``citations`` (marker, source, title,
        page, start, end, quote, supported), ``unsupported_sentences``, ``abstained`` and the
        ``passages`` it was given. ``history`` holds earlier messages as {"role", "content"};
        ``mode`` is hybrid, dense or bm25; ``collection`` is a collection's folder name (empty: the default).
        """
        try:
            service.check_settings(int(k), mode, MAX_K)
            chosen = self.manager.get(self._collection_dir(collection))
            answer = service.ask(chosen, self.assistants, question, history or [], k=int(k), mode=mode)
        except (IndexStoreError, ValueError) as error:
            raise gr.Error(str(error)) from None
        return answer.to_dict()

    def _collection_dir(self, collection: str) -> str | None:
        if not collection:
            return None
        for label, path in self.manager.choices():
            if collection in (label, path, Path(path).name):
                return path
        known = ", ".join(label for label, _ in self.manager.choices())
        raise ValueError(f"unknown collection {collection!r}; known: {known}")


class _Pacer:
    """Spaces out yields to at least ``WORD_INTERVAL_SECONDS``; a slower source is never held back."""

    def __init__(self) -> None:
        self._last = 0.0

    def words(self, text: str, addition: str) -> Iterator[str]:
        """``text`` growing by ``addition`` one word at a time."""
        for word in _WORDS.findall(addition):
            wait = self._last + WORD_INTERVAL_SECONDS - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()
            text += word
            yield text


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) or None


def new_turn(question: str, collection_dir: str, mode: str, k: float, backend: str) -> Turn:
    """A turn for ``question`` with a fresh answer id and the settings it is asked with."""
    mode, top_k = clamp_settings(mode, k)
    settings = {"collection": str(collection_dir or ""), "mode": mode, "k": top_k, "backend": backend}
    return {"question": question, "answer_id": uuid.uuid4().hex[:12], "settings": settings}
